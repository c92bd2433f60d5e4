# VFIO type1 pins a 2M dmemfs mapping for DMA through QEMU's edu
# device behind the emulated Intel IOMMU. With the bug,
# VFIO_IOMMU_MAP_DMA oopses in get_dmem_pfn() (a NULL write) and the
# kernel panics (oops=panic) before the RESULT line.
bdf=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1234:0x11e8 ] &&
		bdf=$(basename "$d")
done
if [ -z "$bdf" ]; then
	echo "repro: RESULT error: no edu device (QEMU's -device edu)"
	exit 0
fi
dev=/sys/bus/pci/devices/$bdf
echo vfio-pci > "$dev/driver_override"
echo "$bdf" > /sys/bus/pci/drivers_probe
echo "repro: edu $bdf: $(basename "$(readlink "$dev/driver")")"
mkdir -p /mnt/dmem
if ! grep -qw dmemfs /proc/filesystems; then
	echo "repro: RESULT absent: this kernel cannot mount dmemfs"
	exit 0
fi
if ! mount -t dmemfs -o pagesize=2M none /mnt/dmem; then
	echo "repro: RESULT error: dmemfs is there, the mount failed"
	exit 0
fi
echo "repro: VFIO_IOMMU_MAP_DMA of a 2M dmemfs mapping"
out=$(vfio-dma --device "$bdf" --file /mnt/dmem/dma --create \
	--size 2M)
echo "$out"
case $out in
*'"ok":true'*)
	echo "repro: RESULT no-bug: pinned, a DMA round trip, unmapped" ;;
*) echo "repro: RESULT error: vfio-dma failed without an oops" ;;
esac
