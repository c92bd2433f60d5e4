/*
 * pool-edge: what a process gets at the edges of a memory pool (dmemfs, hugetlbfs). One case
 * per run, one JSON object on stdout whose "outcome" names the first step that did not
 * succeed ("ftruncate:ENOSPC", "mmap:ENOMEM", "sigbus") or "ok".
 *   fill         create a file of --pages pages, map it shared, write the first word of each
 *                page in order; pages_touched says how far it got before a SIGBUS.
 *   shrink-grow  fill, then ftruncate to 0 and read page 0 (after_shrink: "sigbus" or
 *                "read"), ftruncate back and read it again (after_grow: "zero", "stale" or
 *                "sigbus").
 *   threads      fill with --threads threads at once, every thread writing every page, then
 *                read every page back (verified).
 * And `pool-edge --mount FSTYPE DIR OPTIONS`: mount(2) itself, so that a refusal keeps its errno
 * (outcome "mounted" or "refused:EBUSY"); mount(8) turns errnos into sentences.
 */
#include "rig-helper.h"
#include <sys/mount.h>
#include <sys/stat.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

static const char *TOOL = "pool-edge";
/* Per thread: a SIGBUS is delivered to the thread that faulted, and it jumps back in its own frame. */
static __thread sigjmp_buf rig_jump;
static volatile sig_atomic_t rig_sigbus_seen;

static void usage(void)
{
	printf("usage: pool-edge --case fill|shrink-grow|threads --file PATH --page BYTES --pages N [--threads T]\n"
	       "       pool-edge --mount FSTYPE DIR OPTIONS\n"
	       "Prints one JSON object: outcome (ok, sigbus, or STEP:ERRNO), pages_touched, and per case\n"
	       "after_shrink / after_grow (shrink-grow) or verified (threads). While it fills, \"progress N\"\n"
	       "lines on stderr, at most every half second.\n");
}

static void on_sigbus(int sig)
{
	(void)sig;
	rig_sigbus_seen = 1;
	siglongjmp(rig_jump, 1);
}

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "E?";
}

static void outcome_errno(const char *step, int e)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s:%s", step, errname(e));
	json_str("outcome", buf);
}

static const uint64_t MAGIC = 0x5a5a5a5a5a5a5a5aULL;

/*
 * Progress on stderr at most every half second ("progress N"): a watcher tells a process that
 * is slow from one that stopped moving.
 */
static void progress(uint64_t n)
{
	static double last;
	double now = rig_now();
	if (now - last < 0.5)
		return;
	last = now;
	fprintf(stderr, "progress %" PRIu64 "\n", n);
}

/* Write the first word of each page in order; 1 if a SIGBUS stopped it, with *touched set. */
static int touch_pages(unsigned char *p, uint64_t page, uint64_t pages, volatile uint64_t *touched)
{
	*touched = 0;
	rig_sigbus_seen = 0;
	if (sigsetjmp(rig_jump, 1) == 0)
		for (uint64_t i = *touched; i < pages; i++) {
			progress(i);
			*(volatile uint64_t *)(p + i * page) = i ^ MAGIC;
			*touched = i + 1;
		}
	return rig_sigbus_seen;
}

/* Read the first word of the mapping; 1 if it raised SIGBUS. */
static int read_first(unsigned char *p, volatile uint64_t *value)
{
	rig_sigbus_seen = 0;
	if (sigsetjmp(rig_jump, 1) == 0)
		*value = *(volatile uint64_t *)p;
	return rig_sigbus_seen;
}

struct fill_job {
	unsigned char *p;
	uint64_t page, pages;
	pthread_barrier_t *start;
};

/*
 * Each thread writes every page in order, all starting together: racing first faults on one
 * page are the point (free-running threads raced far more often here than threads held in step
 * by a barrier per page). A SIGBUS ends that thread's writes.
 */
static int write_one(unsigned char *p, uint64_t page, uint64_t i)
{
	if (sigsetjmp(rig_jump, 1) != 0)
		return 1;
	*(volatile uint64_t *)(p + i * page) = i ^ MAGIC;
	return 0;
}

static void *fill_thread(void *arg)
{
	struct fill_job *j = arg;
	pthread_barrier_wait(j->start);
	for (uint64_t i = 0; i < j->pages; i++)
		if (write_one(j->p, j->page, i))
			break;
	return NULL;
}

/* mount -t FSTYPE -o OPTIONS none DIR, DIR created first; the errno of a refusal. */
static int mount_case(const char *fstype, const char *dir, const char *options)
{
	json_str("tool", TOOL);
	json_str("case", "mount");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		outcome_errno("mkdir", errno);
		json_emit();
		return 1;
	}
	if (mount("none", dir, fstype, 0, options) < 0) {
		outcome_errno("refused", errno);
		json_emit();
		return 1;
	}
	json_str("outcome", "mounted");
	json_emit();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "--mount"))
		return mount_case(argv[2], argv[3], argv[4]);
	const char *file = NULL, *what = NULL;
	uint64_t page = 0;
	int pages = 0, threads = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			usage();
			return 0;
		}
		if (rig_int_arg(TOOL, argc, argv, &i, "--pages", &pages) ||
		    rig_int_arg(TOOL, argc, argv, &i, "--threads", &threads))
			continue;
		if (i + 1 < argc && !strcmp(argv[i], "--file")) {
			file = argv[++i];
			continue;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--case")) {
			what = argv[++i];
			continue;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--page")) {
			page = rig_parse_size(argv[++i]);
			continue;
		}
		rig_unknown_arg(TOOL, argv[i]);
	}
	if (!file || !what || !page || pages <= 0 || threads <= 0)
		rig_fail(TOOL, "usage", EINVAL, "give --case, --file, --page and --pages (see --help)");
	const uint64_t size = page * (uint64_t)pages;
	json_str("tool", TOOL);
	json_str("case", what);
	json_u64("pages", (uint64_t)pages);
	int fd = open(file, O_RDWR | O_CREAT, 0600);
	if (fd < 0) {
		outcome_errno("open", errno);
		json_emit();
		return 1;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		outcome_errno("ftruncate", errno);
		json_emit();
		return 1;
	}
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		outcome_errno("mmap", errno);
		json_emit();
		return 1;
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = on_sigbus;
	sigaction(SIGBUS, &sa, NULL);

	if (!strcmp(what, "threads")) {
		pthread_t t[64];
		struct fill_job job = { p, page, (uint64_t)pages, NULL };
		pthread_barrier_t start;
		if (threads > 64)
			threads = 64;
		pthread_barrier_init(&start, NULL, (unsigned)threads);
		job.start = &start;
		for (int i = 0; i < threads; i++)
			pthread_create(&t[i], NULL, fill_thread, &job);
		for (int i = 0; i < threads; i++)
			pthread_join(t[i], NULL);
		json_u64("threads", (uint64_t)threads);
		if (rig_sigbus_seen) {
			json_str("outcome", "sigbus");
			json_emit();
			return 1;
		}
		uint64_t bad = 0;
		for (uint64_t i = 0; i < (uint64_t)pages; i++)
			if (*(volatile uint64_t *)(p + i * page) != (i ^ MAGIC))
				bad++;
		json_str("outcome", "ok");
		json_u64("pages_touched", (uint64_t)pages);
		json_bool("verified", bad == 0);
		json_emit();
		return 0;
	}

	volatile uint64_t touched = 0;
	int bus = touch_pages(p, page, (uint64_t)pages, &touched);
	json_u64("pages_touched", touched);
	if (bus) {
		json_str("outcome", "sigbus");
		json_emit();
		return 1;
	}
	if (!strcmp(what, "shrink-grow")) {
		volatile uint64_t v = 0;
		if (ftruncate(fd, 0) < 0) {
			outcome_errno("ftruncate-0", errno);
			json_emit();
			return 1;
		}
		json_str("after_shrink", read_first(p, &v) ? "sigbus" : "read");
		if (ftruncate(fd, (off_t)size) < 0) {
			outcome_errno("ftruncate-grow", errno);
			json_emit();
			return 1;
		}
		v = 1;
		int bus = read_first(p, &v);
		json_str("after_grow", bus ? "sigbus" : v == 0 ? "zero" : "stale");
		/* What was read: the fill's own word (page 0 ^ MAGIC) is the old data itself. */
		if (!bus) {
			json_hex("after_grow_word", v);
			json_str("after_grow_is_old_data", v == (0 ^ MAGIC) ? "yes" : "no");
		}
	}
	json_str("outcome", "ok");
	json_emit();
	return 0;
}
