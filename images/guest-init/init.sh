#!/bin/busybox sh
# The init of the rig's guests: /init of the small initramfs guests and /sbin/rig-init of the
# L1 disk image. The SSH server comes first (boot-to-SSH is measured): mount what it needs,
# load the image's modules, switch to a disk root if rig.root= says so, install this run's
# key from the kernel command line (rig.key=) and the SSH host key the rig made for this boot
# (fw_cfg), bring up the user-mode network, start dropbear with password logins disabled; the
# remaining mounts follow.
# Real tools first; busybox applets (links made at image build time) fill the gaps.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/bin:/usr/lib/rig/busybox
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
root=
for arg in $cmdline; do
  case "$arg" in
    rig.key=*) key=${arg#rig.key=} ;;
    rig.root=*) root=${arg#rig.root=} ;;
  esac
done

# In the initramfs of a modular kernel: the real root is a disk; modules stay loaded.
if [ -n "$root" ] && [ -f /etc/rig/initramfs ]; then
  mkdir -p /newroot
  if mount -t ext4 "$root" /newroot; then
    umount /dev/pts /run
    mount --move /dev /newroot/dev
    mount --move /proc /newroot/proc
    mount --move /sys /newroot/sys
    exec switch_root /newroot /sbin/rig-init
  fi
  echo "rig-init: FATAL: cannot mount the root file system $root"
fi
if [ -n "$key" ]; then
  echo "ssh-ed25519 $key rig" > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi

# The rig's client accepts no other host key than this one.
hostkey=/sys/firmware/qemu_fw_cfg/by_name/opt/dmemfs-rig/host_key/raw
mkdir -p /etc/dropbear
if [ -r "$hostkey" ] && cat "$hostkey" > /etc/dropbear/dropbear_ed25519_host_key; then
  chmod 600 /etc/dropbear/dropbear_ed25519_host_key
  echo "rig-init: host key from the rig"
else
  echo "rig-init: no host key from the rig (fw_cfg $hostkey): the rig's client will refuse this guest"
fi

ip link set lo up
if ip link set eth0 up 2>/dev/null; then
  ip addr add 10.0.2.15/24 dev eth0
  ip route add default via 10.0.2.2
  # -R: a host key made on first use if the rig gave none; -s: no password logins; -j -k: no port forwarding.
  if dropbear -R -s -j -k -p 22 -P /run/dropbear.pid; then
    echo "rig-init: sshd started"
  else
    echo "rig-init: FATAL: the SSH server did not start"
  fi
else
  echo "rig-init: no network interface"
fi

mkdir -p /dev/shm /tmp /sys/kernel/debug /dev/hugepages
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /dev/shm
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t hugetlbfs hugetlbfs /dev/hugepages 2>/dev/null
echo 1 > /proc/sys/kernel/sysrq
hostname "${HOSTNAME:-rig-guest}" 2>/dev/null

if [ -x /etc/rig/payload ]; then
  /etc/rig/payload
fi
echo "rig-init: ready"
while true; do sleep 3600; done
