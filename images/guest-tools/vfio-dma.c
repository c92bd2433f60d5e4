/*
 * vfio-dma: pin a file-backed buffer for device DMA through VFIO type1 and prove a real DMA
 * lands in it, using QEMU's "edu" PCI device: copy page 0 of the buffer into the device
 * (RAM -> EDU), copy it back into page 1 (EDU -> RAM), compare, unmap. Every step's result
 * and errno go into one JSON object.
 */
#include "rig-helper.h"
#include <libgen.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>

static const char *TOOL = "vfio-dma";

#define EDU_IDENT 0x00
#define EDU_LIVENESS 0x04
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_BUF 0x40000
#define EDU_CMD_START 1
#define EDU_CMD_TO_RAM 2
/* QEMU's edu rejects a transfer that ends exactly at the end of its 4 KiB buffer
 * (edu_check_range compares end < buffer end), and a rejected DMA aborts QEMU: stay inside. */
#define DMA_LEN 2048

static char steps[8192];
static size_t steps_len;

static void step(const char *name, int ok, int err, const char *detail)
{
	steps_len += (size_t)snprintf(steps + steps_len, sizeof(steps) - steps_len, "%s{\"step\":\"%s\",\"ok\":%s,\"errno\":%d,\"detail\":\"%s\"}",
				      steps_len > 1 ? "," : "", name, ok ? "true" : "false", err, detail ? detail : "");
}

static void __attribute__((noreturn)) finish(int ok, const char *failed_step, int err, const char *msg)
{
	snprintf(steps + steps_len, sizeof(steps) - steps_len, "]");
	json_str("tool", TOOL);
	json_bool("ok", ok);
	if (!ok) {
		json_str("step", failed_step);
		json_i64("errno", err);
		json_str("error", msg);
	}
	json_raw_value("steps", steps);
	json_emit();
	exit(ok ? 0 : 1);
}

#define CHECK(cond, name, detail)                                              \
	do {                                                                   \
		int e_ = errno;                                                \
		if (!(cond)) {                                                 \
			step(name, 0, e_, detail);                             \
			char m_[300];                                          \
			snprintf(m_, sizeof(m_), "%s failed: %s", name, strerror(e_)); \
			finish(0, name, e_, m_);                               \
		}                                                              \
		step(name, 1, 0, detail);                                      \
	} while (0)

static volatile uint32_t *bar;

static uint64_t rd64(unsigned off) { return *(volatile uint64_t *)((volatile char *)bar + off); }
static void wr64(unsigned off, uint64_t v) { *(volatile uint64_t *)((volatile char *)bar + off) = v; }

static int dma(uint64_t src, uint64_t dst, uint64_t cnt, uint64_t cmd)
{
	wr64(EDU_DMA_SRC, src);
	wr64(EDU_DMA_DST, dst);
	wr64(EDU_DMA_CNT, cnt);
	wr64(EDU_DMA_CMD, cmd | EDU_CMD_START);
	for (int i = 0; i < 1000; i++) { /* up to 10 s: edu completes on a 100 ms timer */
		if (!(rd64(EDU_DMA_CMD) & EDU_CMD_START))
			return 0;
		usleep(10000);
	}
	return -1;
}

static void usage(void)
{
	printf("usage: vfio-dma --device BDF --file PATH [--size N] [--dma-size N] [--iova N] [--hold S]\n"
	       "The PCI device (QEMU edu, 1234:11e8) must be bound to vfio-pci. Maps --size bytes of\n"
	       "PATH (default 8K; at least 2 pages) at --iova (default 0x100000, below edu's 28-bit DMA\n"
	       "mask) with VFIO_IOMMU_MAP_DMA, DMAs 2 KiB of page 0 into the device and back into page 1,\n"
	       "checks\n"
	       "the bytes, and unmaps. --hold S keeps the DMA mapping (the pin) for S seconds before\n"
	       "unmapping, printing a {\"event\":\"pinned\"} line first. --dma-size N gives VFIO only the\n"
	       "first N bytes of the mapping (a 1 GiB huge page is larger than edu's DMA window).\n"
	       "options:\n" RIG_MAP_USAGE
	       "  --device BDF     e.g. 0000:00:03.0 (its iommu_group decides /dev/vfio/N)\n"
	       "  --help           this text\n");
}

int main(int argc, char **argv)
{
	struct rig_map_opts o = { 0 };
	const char *bdf = NULL;
	uint64_t iova = 0x100000;
	int hold = 0;
	uint64_t dma_size = 0;
	steps[steps_len++] = '[';
	for (int i = 1; i < argc; i++) {
		if (rig_common_arg(TOOL, &o, argc, argv, &i, usage) || rig_int_arg(TOOL, argc, argv, &i, "--hold", &hold))
			continue;
		if (!strcmp(argv[i], "--device") && i + 1 < argc) {
			bdf = argv[++i];
			continue;
		}
		if (!strcmp(argv[i], "--dma-size") && i + 1 < argc) {
			dma_size = rig_parse_size(argv[++i]);
			continue;
		}
		if (!strcmp(argv[i], "--iova") && i + 1 < argc) {
			iova = rig_parse_size(argv[++i]);
			continue;
		}
		rig_unknown_arg(TOOL, argv[i]);
	}
	if (!bdf)
		rig_fail(TOOL, "usage", EINVAL, "--device BDF is required");
	if (!o.size)
		o.size = 8192;
	if (o.size < 8192)
		rig_fail(TOOL, "usage", EINVAL, "--size must be at least two 4K pages");
	if (!dma_size)
		dma_size = o.size;
	if (dma_size < 8192 || dma_size > o.size)
		rig_fail(TOOL, "usage", EINVAL, "--dma-size must be two 4K pages or more, and at most --size");
	if (iova + dma_size > (1ULL << 28))
		rig_fail(TOOL, "usage", EINVAL, "iova 0x%" PRIx64 " + size exceeds edu's 28-bit DMA mask", iova);

	char link[512], target[512];
	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	CHECK(n > 0, "iommu_group", link);
	target[n] = 0;
	char grouppath[64];
	snprintf(grouppath, sizeof(grouppath), "/dev/vfio/%s", basename(target));

	int container = open("/dev/vfio/vfio", O_RDWR);
	CHECK(container >= 0, "open_container", "/dev/vfio/vfio");
	CHECK(ioctl(container, VFIO_GET_API_VERSION) == VFIO_API_VERSION, "api_version", "");
	CHECK(ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) == 1, "type1_supported", "");
	int group = open(grouppath, O_RDWR);
	CHECK(group >= 0, "open_group", grouppath);
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	CHECK(ioctl(group, VFIO_GROUP_GET_STATUS, &gs) == 0 && (gs.flags & VFIO_GROUP_FLAGS_VIABLE), "group_viable", "all devices of the group bound to vfio-pci");
	CHECK(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) == 0, "set_container", "");
	CHECK(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) == 0, "set_iommu_type1", "");
	int dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	CHECK(dev >= 0, "get_device_fd", bdf);
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX };
	CHECK(ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri) == 0 && ri.size >= 0x100, "bar0_info", "");
	void *b = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, dev, (off_t)ri.offset);
	CHECK(b != MAP_FAILED, "bar0_mmap", "");
	bar = b;
	uint32_t ident = bar[EDU_IDENT / 4];
	char idbuf[64];
	snprintf(idbuf, sizeof(idbuf), "0x%08x", ident);
	errno = ENODEV;
	CHECK((ident & 0xffff) == 0x00ed, "edu_ident", idbuf);
	bar[EDU_LIVENESS / 4] = 0x12345678;
	errno = EIO;
	CHECK(bar[EDU_LIVENESS / 4] == ~0x12345678u, "edu_liveness", "");

	/* vfio-pci leaves bus mastering off: without it the device's DMA never reaches memory. */
	struct vfio_region_info ci = { .argsz = sizeof(ci), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	CHECK(ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ci) == 0, "config_info", "");
	uint16_t cmd = 0;
	CHECK(pread(dev, &cmd, 2, (off_t)ci.offset + 4) == 2, "config_read_command", "");
	cmd |= 0x4; /* PCI_COMMAND_MASTER */
	CHECK(pwrite(dev, &cmd, 2, (off_t)ci.offset + 4) == 2, "bus_master_enable", "");

	unsigned char *buf = rig_map(TOOL, &o, NULL);
	memset(buf, 0, 8192);
	for (int i = 0; i < DMA_LEN; i++)
		buf[i] = (unsigned char)(i * 31 + 7);
	struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
						.vaddr = (uintptr_t)buf, .iova = iova, .size = dma_size };
	char mapdetail[128];
	snprintf(mapdetail, sizeof(mapdetail), "iova 0x%" PRIx64 " size %" PRIu64, iova, dma_size);
	CHECK(ioctl(container, VFIO_IOMMU_MAP_DMA, &map) == 0, "map_dma", mapdetail);
	errno = ETIMEDOUT;
	CHECK(dma(iova, EDU_BUF, DMA_LEN, 0) == 0, "dma_ram_to_device", "");
	errno = ETIMEDOUT;
	CHECK(dma(EDU_BUF, iova + 4096, DMA_LEN, EDU_CMD_TO_RAM) == 0, "dma_device_to_ram", "");
	errno = EIO;
	CHECK(memcmp(buf, buf + 4096, DMA_LEN) == 0, "bytes_verified", "page 1 == page 0 after the round trip");
	if (hold > 0) {
		printf("{\"tool\":\"vfio-dma\",\"event\":\"pinned\",\"iova\":\"0x%" PRIx64 "\",\"size\":%" PRIu64 "}\n", iova, dma_size);
		fflush(stdout);
		sleep((unsigned)hold);
	}
	struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = iova, .size = dma_size };
	CHECK(ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) == 0 && unmap.size == dma_size, "unmap_dma", "");
	munmap(buf, o.size);
	close(dev);
	close(group);
	close(container);
	json_u64("bytes_dma", 2 * DMA_LEN);
	finish(1, NULL, 0, NULL);
}
