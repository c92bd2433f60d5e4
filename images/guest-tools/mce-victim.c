/*
 * mce-victim: map one page of a file, touch it, report its physical address (a "ready"
 * JSON line, so the rig can inject a machine check there), then keep reading the page
 * until SIGBUS arrives or the timeout passes. The final JSON line reports si_code,
 * si_addr and si_addr_lsb of the SIGBUS, or a timeout.
 */
#include "rig-helper.h"
#include <signal.h>

static const char *TOOL = "mce-victim";
static volatile sig_atomic_t got_bus;
static volatile int bus_code;
static void *volatile bus_addr;
static volatile short bus_lsb;

#include <setjmp.h>
static sigjmp_buf jump;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	got_bus = 1;
	bus_code = si->si_code;
	bus_addr = si->si_addr;
#ifdef BUS_MCEERR_AR
	bus_lsb = si->si_addr_lsb;
#endif
	siglongjmp(jump, 1);
}

static const char *code_name(int c)
{
	switch (c) {
#ifdef BUS_MCEERR_AR
	case BUS_MCEERR_AR: return "BUS_MCEERR_AR";
	case BUS_MCEERR_AO: return "BUS_MCEERR_AO";
#endif
	case BUS_ADRALN: return "BUS_ADRALN";
	case BUS_ADRERR: return "BUS_ADRERR";
	case BUS_OBJERR: return "BUS_OBJERR";
	default: return "other";
	}
}

static void usage(void)
{
	printf("usage: mce-victim (--file PATH | --anon) [--size N] [--offset N] [--timeout S] [--spin]\n"
	       "Prints {\"event\":\"ready\",\"vaddr\",\"paddr\",\"pfn\"} once the page is mapped (paddr from\n"
	       "pagemap; paddr_unavailable when pagemap shows no page), then reads it\n"
	       "every 10 ms. On SIGBUS: {\"event\":\"sigbus\",\"si_code\",\"si_code_name\",\"si_addr\",\"si_addr_lsb\",\n"
	       "\"addr_matches\"} and exit 0; on timeout {\"event\":\"timeout\"} and exit 3.\n"
	       "options:\n" RIG_MAP_USAGE
	       "  --timeout S      seconds to wait for the SIGBUS (default 60)\n"
	       "  --spin           read the page in a busy loop (keeps the task on its CPU, so the\n"
	       "                   rig can translate vaddr with the CPU's page tables)\n"
	       "  --help           this text\n");
}

int main(int argc, char **argv)
{
	struct rig_map_opts o = { 0 };
	static int timeout = 60;
	static int spin;
	for (int i = 1; i < argc; i++) {
		if (rig_common_arg(TOOL, &o, argc, argv, &i, usage) || rig_int_arg(TOOL, argc, argv, &i, "--timeout", &timeout))
			continue;
		if (!strcmp(argv[i], "--spin")) {
			spin = 1;
			continue;
		}
		rig_unknown_arg(TOOL, argv[i]);
	}
	if (!o.size)
		o.size = (uint64_t)sysconf(_SC_PAGESIZE);
	static volatile unsigned char *p;
	p = rig_map(TOOL, &o, NULL);
	p[0] = 0xa5;
	uint64_t pfn = 0;
	int present = 0;
	int err = rig_virt_to_pfn((void *)p, &pfn, &present);
	/* pagemap shows VM_PFNMAP mappings (dmemfs) as holes: then the rig translates vaddr itself. */
	int have_pa = !err && present && pfn;
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_bus;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	json_str("tool", TOOL);
	json_str("event", "ready");
	json_hex("vaddr", (uintptr_t)p);
	if (have_pa) {
		json_hex("pfn", pfn);
		json_hex("paddr", pfn * (uint64_t)sysconf(_SC_PAGESIZE));
	} else {
		json_str("paddr_unavailable", err ? strerror(-err) : "pagemap shows no page (VM_PFNMAP mappings are skipped by the page walker)");
	}
	json_bool("spinning", spin);
	json_i64("pid", getpid());
	json_smaps((void *)p);
	json_emit();
	double end = rig_now() + timeout;
	if (sigsetjmp(jump, 1) == 0) {
		unsigned sum = 0;
		while (rig_now() < end) {
			sum += p[0];
			if (!spin)
				usleep(10000);
		}
		(void)sum;
	}
	if (got_bus) {
		uintptr_t a = (uintptr_t)bus_addr;
		uintptr_t page = (uintptr_t)p & ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
		json_str("tool", TOOL);
		json_str("event", "sigbus");
		json_bool("ok", 1);
		json_i64("si_code", bus_code);
		json_str("si_code_name", code_name(bus_code));
		json_hex("si_addr", a);
		json_i64("si_addr_lsb", bus_lsb);
		json_bool("addr_matches", a >= page && a < page + o.size);
		json_emit();
		return 0;
	}
	json_str("tool", TOOL);
	json_str("event", "timeout");
	json_bool("ok", 0);
	json_i64("timeout_s", timeout);
	json_emit();
	return 3;
}
