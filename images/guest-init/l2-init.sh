#!/bin/busybox sh
# /init of the second-level guest (L2): report MemTotal, touch rig.touch_mib MiB of RAM
# (tmpfs pages, so the memory behind L2's RAM really gets used), print a completion
# marker (after holding rig.hold_s seconds, if given), power off. Everything goes to the console (L1's QEMU prints it to the rig).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
touch_mib=64
hold_s=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    rig.touch_mib=*) touch_mib=${arg#rig.touch_mib=} ;;
    rig.hold_s=*) hold_s=${arg#rig.hold_s=} ;;
  esac
done
echo "rig-l2: memtotal_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo "rig-l2: nodes=$(ls -d /sys/devices/system/node/node* 2>/dev/null | wc -l)"
mkdir -p /fill
mount -t tmpfs -o size=$((touch_mib + 1))m tmpfs /fill
if dd if=/dev/zero of=/fill/data bs=1M count="$touch_mib" 2>/dev/null; then
  echo "rig-l2: touched_mib=$touch_mib"
else
  echo "rig-l2: touch failed"
fi
# rig.hold_s: stay up with the memory touched while L1 reads KVM's counters.
if [ "$hold_s" -gt 0 ]; then
  echo "rig-l2: holding $hold_s"
  sleep "$hold_s"
fi
echo "rig-l2: done"
poweroff -f
