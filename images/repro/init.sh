#!/bin/busybox sh
# /init of a reproducer's initramfs (dmemfs-rig repro): busybox,
# the helpers and repro.sh. Mounts what the steps need, runs
# repro.sh with its output on the serial console, and powers the
# machine off (QEMU exits: -no-reboot).
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev
/bin/busybox mkdir -p /tmp /mnt
/bin/busybox --install -s
export PATH=/repro:/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo "repro: start on $(uname -r): $(cat /proc/cmdline)"
cd /repro && sh ./repro.sh
echo "repro: done"
sync
poweroff -f
