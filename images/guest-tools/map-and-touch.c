/*
 * map-and-touch: map a file (or anonymous memory), write every page, read it all back, and
 * report bytes touched, minor/major faults, elapsed time, and the mapping's page sizes from
 * smaps. One JSON object on stdout.
 */
#include "rig-helper.h"

static const char *TOOL = "map-and-touch";

static void usage(void)
{
	printf("usage: map-and-touch (--file PATH | --anon) --size N [options]\n"
	       "Maps the memory, writes a pattern into every 4 KiB page, reads all of it back and\n"
	       "prints one JSON object: bytes_touched, minor_faults, major_faults, elapsed_s,\n"
	       "kernel_page_size_kb, mmu_page_size_kb, vmflags, verified, first_pfn.\n"
	       "options:\n" RIG_MAP_USAGE
	       "  --hold SECONDS   keep the mapping for SECONDS after touching (for inspection)\n"
	       "  --no-verify      skip the read-back\n"
	       "  --help           this text\n");
}

int main(int argc, char **argv)
{
	struct rig_map_opts o = { 0 };
	int hold = 0, verify = 1;
	for (int i = 1; i < argc; i++) {
		if (rig_common_arg(TOOL, &o, argc, argv, &i, usage) || rig_int_arg(TOOL, argc, argv, &i, "--hold", &hold))
			continue;
		if (!strcmp(argv[i], "--no-verify")) {
			verify = 0;
			continue;
		}
		rig_unknown_arg(TOOL, argv[i]);
	}
	long min0, maj0, min1, maj1;
	int fd = -1;
	double t0 = rig_now();
	unsigned char *p = rig_map(TOOL, &o, &fd);
	rig_faults(&min0, &maj0);
	const uint64_t step = 4096;
	for (uint64_t off = 0; off < o.size; off += step)
		*(volatile uint64_t *)(p + off) = (off / step) ^ 0x5a5a5a5a5a5a5a5aULL;
	rig_faults(&min1, &maj1);
	double t1 = rig_now();
	int verified = -1;
	uint64_t bad = 0;
	if (verify) {
		for (uint64_t off = 0; off < o.size; off += step)
			if (*(volatile uint64_t *)(p + off) != ((off / step) ^ 0x5a5a5a5a5a5a5a5aULL))
				bad++;
		verified = bad == 0;
	}
	uint64_t pfn = 0;
	int present = 0;
	int perr = rig_virt_to_pfn(p, &pfn, &present);

	json_str("tool", TOOL);
	json_bool("ok", verified != 0);
	json_str("file", o.anon ? "(anonymous)" : o.file);
	json_u64("size", o.size);
	json_u64("offset", o.offset);
	json_u64("bytes_touched", o.size);
	json_u64("pages_touched_4k", o.size / step);
	json_i64("minor_faults", min1 - min0);
	json_i64("major_faults", maj1 - maj0);
	json_f64("elapsed_s", t1 - t0);
	json_smaps(p);
	if (verify) {
		json_bool("verified", verified);
		json_u64("bad_pages", bad);
	}
	if (!perr && present)
		json_hex("first_pfn", pfn);
	json_emit();
	if (hold > 0)
		sleep((unsigned)hold);
	munmap(p, o.size);
	if (fd >= 0)
		close(fd);
	return verified == 0 ? 1 : 0;
}
