# A 2M dmemfs file is written, truncated to 0 and grown back: the
# next fault takes a dpage from the pool again (first fit: the one
# just freed). With the bug it still holds what was written.
mkdir -p /mnt/dmem
if ! grep -qw dmemfs /proc/filesystems; then
	echo "repro: RESULT absent: this kernel cannot mount dmemfs"
	exit 0
fi
if ! mount -t dmemfs -o pagesize=2M none /mnt/dmem; then
	echo "repro: RESULT error: dmemfs is there, the mount failed"
	exit 0
fi
out=$(pool-edge --case shrink-grow --file /mnt/dmem/sg \
	--page 2097152 --pages 1)
echo "$out"
case $out in
*'"after_grow":"stale"'*)
	echo "repro: RESULT bug: page 0 holds its old data again" ;;
*'"after_grow":"zero"'*)
	echo "repro: RESULT no-bug: page 0 reads back zero" ;;
*) echo "repro: RESULT error: pool-edge did not read page 0 back" ;;
esac
