# A 4K dmemfs mount on a kernel booted without dmem= has no pool:
# the first fault of a mapped file cannot be served. With the bug
# it never returns (the fault handler retries for ever, the task
# stays runnable, in the kernel); fixed, the process gets SIGBUS at
# once.
mkdir -p /mnt/dmem
if ! grep -qw dmemfs /proc/filesystems; then
	echo "repro: RESULT absent: this kernel cannot mount dmemfs"
	exit 0
fi
if ! mount -t dmemfs -o pagesize=4K none /mnt/dmem; then
	echo "repro: RESULT error: dmemfs is there, the mount failed"
	exit 0
fi
pool-edge --case fill --file /mnt/dmem/f --page 4096 --pages 1 \
	> /tmp/fill.json 2>/dev/null &
pid=$!
i=0
while [ $i -lt 20 ] && [ -d "/proc/$pid" ] &&
	! grep -q outcome /tmp/fill.json; do
	sleep 1
	i=$((i + 1))
done
if grep -q outcome /tmp/fill.json; then
	cat /tmp/fill.json
	case $(cat /tmp/fill.json) in
	*'"outcome":"sigbus"'*)
		echo "repro: RESULT no-bug: the fault gets SIGBUS" ;;
	*) echo "repro: RESULT error: the fill ended without SIGBUS" ;;
	esac
	exit 0
fi
# Still runnable, and its system time grows: it spins in the kernel.
s0=$(awk '{ print $15 }' "/proc/$pid/stat")
sleep 2
s1=$(awk '{ print $15 }' "/proc/$pid/stat")
state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status")
echo "repro: after $i s: state $state, system time $s0 -> $s1 ticks"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
if [ "$state" = R ] && [ "$s1" -gt "$s0" ]; then
	echo "repro: RESULT bug: the fault never returns (killed)"
else
	echo "repro: RESULT error: the fill is stuck in state $state"
fi
