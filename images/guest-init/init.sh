#!/bin/busybox sh
# /init of the rig's small guests (first guest, L2). The SSH server comes first (boot-to-SSH
# is measured): mount what it needs, load the image's modules, install this run's key from
# the kernel command line (rig.key=), bring up the user-mode network, start dropbear with
# password logins disabled; the remaining mounts follow.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run

if [ -s /etc/rig/modules.order ]; then
  while read -r m; do
    [ -n "$m" ] && insmod "/lib/modules/$m"
  done < /etc/rig/modules.order
fi

read -r cmdline < /proc/cmdline
key=
for arg in $cmdline; do
  case "$arg" in rig.key=*) key=${arg#rig.key=} ;; esac
done
if [ -n "$key" ]; then
  echo "ssh-ed25519 $key rig" > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi

ip link set lo up
if ip link set eth0 up 2>/dev/null; then
  ip addr add 10.0.2.15/24 dev eth0
  ip route add default via 10.0.2.2
  # -R: host keys made on first use if the image has none; -s: no password logins; -j -k: no port forwarding.
  dropbear -R -s -j -k -p 22 -P /run/dropbear.pid
  echo "rig-init: sshd started"
else
  echo "rig-init: no network interface"
fi

mkdir -p /dev/shm /tmp /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo 1 > /proc/sys/kernel/sysrq

if [ -x /etc/rig/payload ]; then
  /etc/rig/payload
fi
echo "rig-init: ready"
while true; do sleep 3600; done
