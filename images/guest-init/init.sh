#!/bin/busybox sh
# /init of the rig's small guests (first guest, L2): mount the basics, load the modules the
# image lists, install this run's SSH key from the kernel command line (rig.key=), bring up
# the user-mode network and start dropbear with password logins disabled.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /tmp /run /sys/kernel/debug
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo 1 > /proc/sys/kernel/sysrq

if [ -f /etc/rig/modules.order ]; then
  while read -r m; do
    [ -n "$m" ] && insmod "/lib/modules/$m" 2>/dev/null
  done < /etc/rig/modules.order
fi

key=$(sed -n 's/.*rig\.key=\([A-Za-z0-9+\/=]*\).*/\1/p' /proc/cmdline)
mkdir -p /root/.ssh /etc/dropbear
chmod 700 /root /root/.ssh
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

if [ -x /etc/rig/payload ]; then
  /etc/rig/payload
fi
echo "rig-init: ready"
while true; do sleep 3600; done
