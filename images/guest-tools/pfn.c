/*
 * pfn: map a file (or anonymous memory), touch it, and translate the virtual address of
 * each page (or every --stride bytes) to its physical address through /proc/self/pagemap.
 * Used to find MCE targets and to check NUMA placement. One JSON object on stdout.
 */
#include "rig-helper.h"

static const char *TOOL = "pfn";

static void usage(void)
{
	printf("usage: pfn (--file PATH | --anon) --size N [--stride N] [--max N]\n"
	       "Maps and touches the memory, then prints one JSON object with \"pages\": an array of\n"
	       "{offset, vaddr, pfn, paddr} (present pages), plus min_paddr/max_paddr. PFNs need root.\n"
	       "options:\n" RIG_MAP_USAGE
	       "  --stride N       translate one address every N bytes (default 4K)\n"
	       "  --max N          at most N entries in the array (default 4096); min/max cover all\n"
	       "  --hold SECONDS   keep the mapping afterwards\n"
	       "  --help           this text\n");
}

int main(int argc, char **argv)
{
	struct rig_map_opts o = { 0 };
	uint64_t stride = 4096, max = 4096;
	int hold = 0;
	for (int i = 1; i < argc; i++) {
		if (rig_common_arg(TOOL, &o, argc, argv, &i, usage) || rig_int_arg(TOOL, argc, argv, &i, "--hold", &hold))
			continue;
		if ((!strcmp(argv[i], "--stride") || !strcmp(argv[i], "--max")) && i + 1 < argc) {
			uint64_t v = rig_parse_size(argv[i + 1]);
			if (!v)
				rig_fail(TOOL, "usage", EINVAL, "%s: bad value '%s'", argv[i], argv[i + 1]);
			if (!strcmp(argv[i], "--stride"))
				stride = v;
			else
				max = v;
			i++;
			continue;
		}
		rig_unknown_arg(TOOL, argv[i]);
	}
	unsigned char *p = rig_map(TOOL, &o, NULL);
	for (uint64_t off = 0; off < o.size; off += 4096)
		p[off] = 1;
	static char arr[60000];
	size_t len = 0;
	uint64_t n = 0, present_n = 0, minpa = UINT64_MAX, maxpa = 0;
	long ps = sysconf(_SC_PAGESIZE);
	len += (size_t)snprintf(arr + len, sizeof(arr) - len, "[");
	for (uint64_t off = 0; off < o.size; off += stride) {
		uint64_t pfn = 0;
		int present = 0;
		int err = rig_virt_to_pfn(p + off, &pfn, &present);
		if (err)
			rig_fail(TOOL, "pagemap", -err, "cannot read /proc/self/pagemap: %s", strerror(-err));
		if (!present)
			continue;
		present_n++;
		uint64_t pa = pfn * (uint64_t)ps + ((uintptr_t)(p + off) % (uintptr_t)ps);
		if (pfn == 0)
			rig_fail(TOOL, "pagemap", EPERM, "pagemap shows PFN 0: run as root (CAP_SYS_ADMIN) to see physical addresses");
		if (pa < minpa)
			minpa = pa;
		if (pa > maxpa)
			maxpa = pa;
		if (n < max && len + 128 < sizeof(arr)) {
			len += (size_t)snprintf(arr + len, sizeof(arr) - len, "%s{\"offset\":%" PRIu64 ",\"vaddr\":\"0x%" PRIxPTR "\",\"pfn\":\"0x%" PRIx64 "\",\"paddr\":\"0x%" PRIx64 "\"}",
						n ? "," : "", off, (uintptr_t)(p + off), pfn, pa);
			n++;
		}
	}
	snprintf(arr + len, sizeof(arr) - len, "]");
	json_str("tool", TOOL);
	json_bool("ok", present_n > 0);
	json_str("file", o.anon ? "(anonymous)" : o.file);
	json_u64("size", o.size);
	json_u64("stride", stride);
	json_u64("present", present_n);
	if (present_n) {
		json_hex("min_paddr", minpa);
		json_hex("max_paddr", maxpa);
	}
	json_smaps(p);
	json_raw_value("pages", arr);
	json_emit();
	if (hold > 0)
		sleep((unsigned)hold);
	return present_n ? 0 : 1;
}
