# The plainest uses of dmemfs on the debug kernel (lockdep,
# DEBUG_ATOMIC_SLEEP): what its checkers print is the bug. Lockdep
# turns itself off after its first report, so each step is run on
# a fresh boot.
#   STEP  create: a 4K mount and a file (two dmemfs inodes);
#         fault: that, then the first 4K fault of the file;
#         unservable: the first 4K fault of a file with no pool
#         behind it (the kernel booted without dmem=), bounded
STEP=${STEP:-create}
mkdir -p /mnt/dmem
if ! grep -qw dmemfs /proc/filesystems; then
	echo "repro: RESULT absent: this kernel cannot mount dmemfs"
	exit 0
fi
if [ ! -e /proc/lockdep ]; then
	echo "repro: RESULT error: not a debug kernel (no lockdep)"
	exit 0
fi
if ! mount -t dmemfs -o pagesize=4K none /mnt/dmem; then
	echo "repro: RESULT error: dmemfs is there, the mount failed"
	exit 0
fi
f=/mnt/dmem/probe
truncate -s 64K $f
case $STEP in
fault)
	# DEBUG_ATOMIC_SLEEP says at most one thing a second.
	sleep 2
	map-and-touch --file $f --size 4K ;;
unservable)
	pool-edge --case fill --file $f --page 4096 --pages 1 &
	pid=$!
	i=0
	while [ $i -lt 20 ] && [ -d "/proc/$pid" ]; do
		sleep 1
		i=$((i + 1))
	done
	[ -d "/proc/$pid" ] && kill -KILL "$pid"
	wait "$pid" 2>/dev/null ;;
esac
# A report's last lines reach the log a moment after it starts.
sleep 2
n=$(dmesg | grep -cE '^(\[[ .0-9]+\] )?(BUG|WARNING): ')
if [ "$n" -gt 0 ]; then
	echo "repro: RESULT bug: $n checker reports after step $STEP"
else
	echo "repro: RESULT no-bug: no checker report after step $STEP"
fi
