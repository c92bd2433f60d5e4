/*
 * Shared pieces of the rig's in-guest helpers: one JSON object on stdout per run,
 * errors as {"ok":false,"step":...,"errno":...,"error":...} with a non-zero exit.
 * Written for dmemfs-rig; static, no dependencies beyond libc.
 */
#ifndef RIG_HELPER_H
#define RIG_HELPER_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

/* ---- JSON output: a flat object built field by field ---- */
static char rig_json[1 << 16];
static size_t rig_json_len;
static int rig_json_fields;

static inline void rig_json_raw(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(rig_json + rig_json_len, sizeof(rig_json) - rig_json_len, fmt, ap);
	va_end(ap);
	if (n > 0 && rig_json_len + (size_t)n < sizeof(rig_json))
		rig_json_len += (size_t)n;
}

static inline void rig_json_sep(const char *key)
{
	rig_json_raw("%s\"%s\":", rig_json_fields++ ? "," : "{", key);
}

static inline void rig_json_escaped(const char *s)
{
	rig_json_raw("\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			rig_json_raw("\\%c", c);
		else if (c < 0x20)
			rig_json_raw("\\u%04x", c);
		else
			rig_json_raw("%c", c);
	}
	rig_json_raw("\"");
}

static inline void json_str(const char *key, const char *v) { rig_json_sep(key); rig_json_escaped(v ? v : ""); }
static inline void json_u64(const char *key, uint64_t v) { rig_json_sep(key); rig_json_raw("%" PRIu64, v); }
static inline void json_i64(const char *key, int64_t v) { rig_json_sep(key); rig_json_raw("%" PRId64, v); }
static inline void json_hex(const char *key, uint64_t v) { rig_json_sep(key); rig_json_raw("\"0x%" PRIx64 "\"", v); }
static inline void json_bool(const char *key, int v) { rig_json_sep(key); rig_json_raw(v ? "true" : "false"); }
static inline void json_f64(const char *key, double v) { rig_json_sep(key); rig_json_raw("%.6f", v); }
/* A pre-built JSON value (array or object). */
static inline void json_raw_value(const char *key, const char *v) { rig_json_sep(key); rig_json_raw("%s", v); }

static inline void json_emit(void)
{
	if (!rig_json_fields)
		rig_json_raw("{");
	rig_json_raw("}\n");
	fwrite(rig_json, 1, rig_json_len, stdout);
	fflush(stdout);
	rig_json_len = 0;
	rig_json_fields = 0;
}

/* Report a failed step and exit: the JSON says which step, errno and why. */
static inline void __attribute__((noreturn)) rig_fail(const char *tool, const char *step, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rig_json_len = 0;
	rig_json_fields = 0;
	json_str("tool", tool);
	json_bool("ok", 0);
	json_str("step", step);
	json_i64("errno", err);
	json_str("errno_name", err ? strerrorname_np(err) ? strerrorname_np(err) : "" : "");
	json_str("error", msg);
	json_emit();
	exit(step && strcmp(step, "usage") == 0 ? 2 : 1);
}

/* "4096", "64M", "1G", "2m" -> bytes; 0 on error. */
static inline uint64_t rig_parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	return *end ? 0 : (uint64_t)v;
}

static inline double rig_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void rig_faults(long *minor, long *major)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*minor = ru.ru_minflt;
	*major = ru.ru_majflt;
}

/* smaps entry of the mapping that contains addr. */
struct rig_smaps {
	long kernel_page_kb, mmu_page_kb, rss_kb;
	char vmflags[256];
	int found;
};

static inline struct rig_smaps rig_smaps_of(const void *addr)
{
	struct rig_smaps r = { -1, -1, -1, "", 0 };
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0;
	if (!f)
		return r;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') && line[0] != 'V') {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			if (in)
				r.found = 1;
			continue;
		}
		if (!in)
			continue;
		sscanf(line, "KernelPageSize: %ld kB", &r.kernel_page_kb);
		sscanf(line, "MMUPageSize: %ld kB", &r.mmu_page_kb);
		sscanf(line, "Rss: %ld kB", &r.rss_kb);
		if (strncmp(line, "VmFlags:", 8) == 0) {
			char *p = line + 8;
			while (*p == ' ')
				p++;
			p[strcspn(p, "\n")] = 0;
			snprintf(r.vmflags, sizeof(r.vmflags), "%.250s", p);
		}
	}
	fclose(f);
	return r;
}

static inline void json_smaps(const void *addr)
{
	struct rig_smaps s = rig_smaps_of(addr);
	json_i64("kernel_page_size_kb", s.kernel_page_kb);
	json_i64("mmu_page_size_kb", s.mmu_page_kb);
	json_i64("rss_kb", s.rss_kb);
	json_str("vmflags", s.vmflags);
}

/* Physical frame of a virtual address through /proc/self/pagemap (needs CAP_SYS_ADMIN for PFNs). */
static int rig_pagemap_fd = -1;

static inline int rig_virt_to_pfn(const void *addr, uint64_t *pfn, int *present)
{
	uint64_t entry;
	long ps = sysconf(_SC_PAGESIZE);
	if (rig_pagemap_fd < 0)
		rig_pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (rig_pagemap_fd < 0)
		return -errno;
	off_t off = (off_t)((uintptr_t)addr / (uintptr_t)ps) * 8;
	if (pread(rig_pagemap_fd, &entry, 8, off) != 8)
		return -errno;
	*present = (int)((entry >> 63) & 1);
	*pfn = entry & ((1ULL << 55) - 1);
	return 0;
}

/* Common options: --file PATH | --anon, --size N, --offset N, --create. */
struct rig_map_opts {
	const char *file;
	int anon, create, private_map, hugetlb_anon;
	uint64_t size, offset, align;
};

/* Open (and with --create, size) the file and map it shared; fails with a JSON error. */
static inline void *rig_map(const char *tool, struct rig_map_opts *o, int *fd_out)
{
	int fd = -1;
	int flags = o->private_map ? MAP_PRIVATE : MAP_SHARED;
	if (!o->size)
		rig_fail(tool, "usage", EINVAL, "--size is required (bytes, or with K/M/G)");
	if (o->anon) {
		flags = MAP_PRIVATE | MAP_ANONYMOUS;
	} else {
		if (!o->file)
			rig_fail(tool, "usage", EINVAL, "give --file PATH or --anon");
		fd = open(o->file, O_RDWR | (o->create ? O_CREAT : 0), 0600);
		if (fd < 0)
			rig_fail(tool, "open", errno, "cannot open %s: %s", o->file, strerror(errno));
		struct statfs sf;
		uint64_t align = o->align;
		if (!align && fstatfs(fd, &sf) == 0)
			align = (uint64_t)sf.f_bsize;
		if (align && (o->size % align || o->offset % align))
			rig_fail(tool, "align", EINVAL, "size %" PRIu64 " / offset %" PRIu64 " is not a multiple of the page size %" PRIu64 " of %s",
				 o->size, o->offset, align, o->file);
		struct stat st;
		if (fstat(fd, &st) < 0)
			rig_fail(tool, "stat", errno, "cannot stat %s", o->file);
		if (o->create && S_ISREG(st.st_mode) && (uint64_t)st.st_size < o->offset + o->size &&
		    ftruncate(fd, (off_t)(o->offset + o->size)) < 0)
			rig_fail(tool, "ftruncate", errno, "cannot size %s to %" PRIu64 ": %s", o->file, o->offset + o->size, strerror(errno));
	}
	void *p = mmap(NULL, o->size, PROT_READ | PROT_WRITE, flags, fd, (off_t)o->offset);
	if (p == MAP_FAILED)
		rig_fail(tool, "mmap", errno, "mmap of %" PRIu64 " bytes of %s failed: %s", o->size, o->anon ? "anonymous memory" : o->file, strerror(errno));
	if (fd_out)
		*fd_out = fd;
	return p;
}

/* Parse one common option at argv[*i]; returns 1 if consumed. */
static inline int rig_map_opt(const char *tool, struct rig_map_opts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	const char *next = *i + 1 < argc ? argv[*i + 1] : NULL;
	if (!strcmp(a, "--anon")) { o->anon = 1; return 1; }
	if (!strcmp(a, "--create")) { o->create = 1; return 1; }
	if (!strcmp(a, "--private")) { o->private_map = 1; return 1; }
	if (!strcmp(a, "--file") || !strcmp(a, "--size") || !strcmp(a, "--offset") || !strcmp(a, "--align")) {
		if (!next)
			rig_fail(tool, "usage", EINVAL, "%s needs a value", a);
		(*i)++;
		if (!strcmp(a, "--file")) { o->file = next; return 1; }
		uint64_t v = rig_parse_size(next);
		if (!v && strcmp(next, "0"))
			rig_fail(tool, "usage", EINVAL, "%s: cannot parse size '%s'", a, next);
		if (!strcmp(a, "--size")) o->size = v;
		else if (!strcmp(a, "--offset")) o->offset = v;
		else o->align = v;
		return 1;
	}
	return 0;
}

/* --help (prints usage, exits 0) and the common mapping options; 1 if argv[*i] was one. */
static inline int rig_common_arg(const char *tool, struct rig_map_opts *o, int argc, char **argv, int *i, void (*usage)(void))
{
	if (!strcmp(argv[*i], "--help") || !strcmp(argv[*i], "-h")) {
		usage();
		exit(0);
	}
	return rig_map_opt(tool, o, argc, argv, i);
}

/* An integer option "--name N"; 1 if argv[*i] was it. */
static inline int rig_int_arg(const char *tool, int argc, char **argv, int *i, const char *name, int *out)
{
	if (strcmp(argv[*i], name))
		return 0;
	if (*i + 1 >= argc)
		rig_fail(tool, "usage", EINVAL, "%s needs a value", name);
	*out = atoi(argv[++*i]);
	return 1;
}

static inline void __attribute__((noreturn)) rig_unknown_arg(const char *tool, const char *arg)
{
	rig_fail(tool, "usage", EINVAL, "unknown argument '%s' (see --help)", arg);
}

#define RIG_MAP_USAGE \
	"  --file PATH      file to map (dmemfs, hugetlbfs, tmpfs, /dev/daxX.Y, /dev/mem)\n" \
	"  --anon           anonymous memory instead of a file\n" \
	"  --size N         bytes to map (K/M/G suffixes)\n" \
	"  --offset N       file offset (default 0)\n" \
	"  --align N        page size the size must be a multiple of (default: the file system's)\n" \
	"  --create         create the file and grow it to offset+size\n" \
	"  --private        MAP_PRIVATE instead of MAP_SHARED\n"

#endif
