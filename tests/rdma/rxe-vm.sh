#!/usr/bin/env bash
# rxe-vm.sh - run a command against a real Soft-RoCE (rdma_rxe) device inside a
# throw-away QEMU VM that boots Debian's stock 6.1 kernel.
# (The project's own copy of the team harness; it also loads fuse, so mounts
# work in the guest.)
#
# The host's root filesystem is shared into the VM read-only over virtio-9p and
# used (through an in-guest overlayfs whose upper layer is tmpfs) as the VM's
# root, so any binary built on the host runs unchanged in the VM with the same
# paths and libraries. Writes inside the VM are discarded unless they go to a
# directory given with --rw.
#
# Usage:  rxe-vm.sh [options] [--] COMMAND [ARGS...]
#         rxe-vm.sh --selftest        # ibv_devinfo, ibv_rc_pingpong, rping, ib_write_bw, ib_read_bw
# Options:
#   --accel auto|tcg|kvm  default auto = kvm only if /dev/kvm is usable AND the CPU shows vmx/svm,
#                     else tcg (on kvm_pvm hosts such as this sandbox a stock kernel cannot run under KVM)
#   --mem MiB         guest memory (default 2048)
#   --smp N           guest vCPUs (default 2)
#   --timeout SEC     limit for COMMAND inside the guest (default 900)
#   --rw DIR          share host DIR read-write at the same path (repeatable)
#   --env VAR=VALUE   export into the guest command's environment (repeatable)
#   --netdev dummy|lo rxe0 is bound to dummy0 (198.51.100.1/24, default; the VM has no NIC)
#                     or to lo (verbs work; rdma_cm to 127.0.0.1 fails: rdma_resolve_route ENODEV)
#   --boot-timeout S  give up if the VM is not ready after S seconds (default 120)
#   --no-install      do not apt-get install missing host packages
#   --keep            keep the work dir (initramfs, console log)
# The command runs as root in the guest, in the caller's cwd, with stdin from /dev/null and
# RXE_DEV=rxe0, RXE_IP=<address of the rxe netdev>, RXE_GID_INDEX=<its RoCEv2 IPv4 GID index>.
# Environment: RXE_VM_CACHE (kernel cache, default ~/.cache/rxe-vm)
# Exit status: COMMAND's status; 124 if it timed out in the guest; 125 if the VM failed.
set -euo pipefail

ACCEL=auto MEM=2048 SMP=2 TIMEOUT=900 BOOT_TIMEOUT=120 NETDEV=dummy INSTALL=1 KEEP=0 SELFTEST=0
RW_DIRS=() ENVS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --accel) ACCEL=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --smp) SMP=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --boot-timeout) BOOT_TIMEOUT=$2; shift 2 ;;
    --rw) RW_DIRS+=("$(realpath "$2")"); shift 2 ;;
    --env) ENVS+=("$2"); shift 2 ;;
    --netdev) NETDEV=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=1; shift ;;
    --selftest) SELFTEST=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n "2,/^set -euo/p" "$0" | sed "$ d"; exit 0 ;;
    *) break ;;
  esac
done
if [ "$SELFTEST" = 0 ] && [ $# -eq 0 ]; then echo "rxe-vm: no command given (try --help)" >&2; exit 2; fi

log() { echo "rxe-vm: $*" >&2; }
T0=$(date +%s.%N)
elapsed() { echo "$(date +%s.%N) $T0" | awk '{printf "%.1f", $1-$2}'; }

# ---------------------------------------------------------------- host packages
HOST_PKGS="qemu-system-x86 busybox-static cpio ibverbs-providers ibverbs-utils rdmacm-utils perftest iproute2"
apt_retry() {  # apt-get with retry while another dpkg holds the lock
  local i
  for i in $(seq 1 60); do
    if DEBIAN_FRONTEND=noninteractive apt-get "$@" >/tmp/rxe-vm-apt.$$ 2>&1; then rm -f /tmp/rxe-vm-apt.$$; return 0; fi
    if grep -q 'Could not get lock\|Unable to acquire\|is another process using it' /tmp/rxe-vm-apt.$$; then sleep 5; continue; fi
    cat /tmp/rxe-vm-apt.$$ >&2; rm -f /tmp/rxe-vm-apt.$$; return 1
  done
  return 1
}
missing=""
for p in $HOST_PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"; done
if [ -n "$missing" ]; then
  [ "$INSTALL" = 1 ] || { log "missing packages:$missing"; exit 125; }
  log "installing:$missing"
  [ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || apt_retry update
  apt_retry install -y --no-install-recommends $missing || { apt_retry update && apt_retry install -y --no-install-recommends $missing; }
fi

# ---------------------------------------------------------------- guest kernel (Debian's, cached)
CACHE=${RXE_VM_CACHE:-$HOME/.cache/rxe-vm}
mkdir -p "$CACHE"
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$KPKG" ] || { log "cannot resolve linux-image-amd64 (run apt-get update)"; exit 125; }
KVER=${KPKG#linux-image-}
KDIR="$CACHE/v3-$KVER"  # v3: with fuse
if [ ! -f "$KDIR/.done" ]; then
  log "fetching $KPKG"
  rm -rf "$KDIR"; mkdir -p "$KDIR/deb"
  (cd "$KDIR/deb" && apt-get download "$KPKG" >/dev/null 2>&1) || { log "apt-get download $KPKG failed"; exit 125; }
  dpkg-deb -x "$KDIR"/deb/*.deb "$KDIR/x"
  # keep only the kernel image and the modules we load (about 15 MB instead of 400 MB)
  cp "$KDIR/x/boot/vmlinuz-$KVER" "$KDIR/vmlinuz"
  (cd "$KDIR/x/lib/modules/$KVER" && find kernel \( -path '*/infiniband/*' -o -path '*/virtio/*' -o -path '*/9p/*' \
     -o -name 'udp_tunnel.ko*' -o -name 'ip6_udp_tunnel.ko*' -o -name 'crc32*' -o -name 'configfs.ko*' -o -name 'dummy.ko*' \
     -o -name 'veth.ko*' -o -name 'overlay.ko*' -o -path '*/netfs/*' -o -path '*/fscache/*' -o -path '*/fs/fuse/*' \) \
     -name '*.ko*' | cpio -pdm --quiet "$KDIR/mods")
  rm -rf "$KDIR/deb" "$KDIR/x"
  touch "$KDIR/.done"
fi
VMLINUZ="$KDIR/vmlinuz"
MODDIR="$KDIR/mods/kernel"

# Modules in load order (dependencies first). '?' = optional (may fail, e.g. no PCLMUL under TCG).
MODULES="
crypto/crc32_generic ?arch/x86/crypto/crc32-pclmul
net/ipv4/udp_tunnel net/ipv6/ip6_udp_tunnel
drivers/infiniband/core/ib_core drivers/infiniband/core/ib_uverbs drivers/infiniband/sw/rxe/rdma_rxe
fs/configfs/configfs drivers/infiniband/core/iw_cm drivers/infiniband/core/ib_cm
drivers/infiniband/core/rdma_cm drivers/infiniband/core/rdma_ucm drivers/infiniband/core/ib_umad
drivers/net/dummy
drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci
net/9p/9pnet net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p fs/overlayfs/overlay
fs/fuse/fuse
"

# ---------------------------------------------------------------- initramfs
WORK=$(mktemp -d /tmp/rxe-vm.XXXXXX)
cleanup() { if [ "$KEEP" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
R="$WORK/initramfs"
mkdir -p "$R"/{bin,proc,sys,dev,lower,ovl,newroot,mod}
cp /bin/busybox "$R/bin/busybox"
: > "$R/modules"
for m in $MODULES; do
  opt=""; case "$m" in \?*) opt="?"; m=${m#\?} ;; esac
  f="$MODDIR/$m.ko"; [ -f "$f" ] || f="$f.xz"
  [ -f "$f" ] || { [ -n "$opt" ] && continue; log "module $m missing in $KPKG"; exit 125; }
  b=$(basename "$f"); cp "$f" "$R/mod/$b"; echo "$opt$b" >> "$R/modules"
done

# The command, cwd and environment for the guest.
{
  echo "cd $(printf '%q' "$PWD") 2>/dev/null || cd /"
  for e in "${ENVS[@]+"${ENVS[@]}"}"; do echo "export $(printf '%q' "$e")"; done
  if [ "$SELFTEST" = 1 ]; then
    cat <<'EOF'
set -x
rdma link show; ibv_devices; ibv_devinfo -d rxe0
IP=$RXE_IP GIDX=$RXE_GID_INDEX T="timeout 60"
$T ibv_rc_pingpong -d rxe0 -g "$GIDX" -n 1000 & sleep 1
$T ibv_rc_pingpong -d rxe0 -g "$GIDX" -n 1000 127.0.0.1 || exit 11; wait $! || exit 11
$T rping -s -a "$IP" -C 100 -V & sleep 1
$T rping -c -a "$IP" -C 100 -V -v | tail -2; [ ${PIPESTATUS[0]} = 0 ] || exit 12; wait $! || exit 12
$T ib_write_bw -F -d rxe0 -x "$GIDX" -s 65536 -n 2000 --report_gbits >/dev/null & sleep 3
$T ib_write_bw -F -d rxe0 -x "$GIDX" -s 65536 -n 2000 --report_gbits 127.0.0.1 | tail -3; wait $! || exit 13
$T ib_read_bw -F -d rxe0 -R -s 65536 -n 2000 --report_gbits >/dev/null & sleep 3
$T ib_read_bw -F -d rxe0 -R -s 65536 -n 2000 --report_gbits "$IP" | tail -3; wait $! || exit 14
echo SELFTEST OK
EOF
  else
    printf 'exec timeout -k 5 %q' "$TIMEOUT"; printf ' %q' "$@"; echo
  fi
} > "$R/cmd"

RW_SPEC=""; QEMU_SHARES=()
i=0
for d in "${RW_DIRS[@]+"${RW_DIRS[@]}"}"; do
  RW_SPEC="$RW_SPEC rw$i:$d"
  QEMU_SHARES+=(-virtfs "local,path=$d,mount_tag=rw$i,security_model=none,id=rw$i")
  i=$((i+1))
done
echo "$RW_SPEC" > "$R/rw"
echo "$NETDEV" > "$R/netdev"

cat > "$R/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
fail() { echo "rxe-vm-guest: $*"; echo "RXE_VM_EXIT=125"; poweroff -f; }
for m in $(cat /modules); do
  case "$m" in \?*) insmod /mod/${m#?} 2>/dev/null ;; *) insmod /mod/$m || fail "insmod $m" ;; esac
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /lower || fail "9p mount"
mount -t tmpfs -o size=50% tmpfs /ovl && mkdir -p /ovl/u /ovl/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/ovl/u,workdir=/ovl/w /newroot || fail "overlay mount"
N=/newroot
mount -t proc proc $N/proc; mount -t sysfs sysfs $N/sys; mount -t devtmpfs devtmpfs $N/dev
mkdir -p $N/dev/pts $N/dev/shm; mount -t devpts devpts $N/dev/pts; mount -t tmpfs tmpfs $N/dev/shm
mount -t tmpfs tmpfs $N/run   # /tmp and the rest stay writable through the overlay (tmpfs upper layer)
for s in $(cat /rw); do mkdir -p "$N${s#*:}"; mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "${s%%:*}" "$N${s#*:}" || fail "mount ${s#*:}"; done
ip link set lo up
if [ "$(cat /netdev)" = dummy ]; then
  ip link set dummy0 up; ip addr add 198.51.100.1/24 dev dummy0 || fail "dummy0 address"
  chroot $N rdma link add rxe0 type rxe netdev dummy0 || fail "rdma link add"
  IP=198.51.100.1
else
  chroot $N rdma link add rxe0 type rxe netdev lo || fail "rdma link add"
  IP=127.0.0.1
fi
WANT="0000:0000:0000:0000:0000:ffff:$(printf '%02x%02x:%02x%02x' $(echo $IP | tr . ' '))"
GIDX=""; for try in $(seq 50); do   # the GID table fills asynchronously
  for g in /sys/class/infiniband/rxe0/ports/1/gids/*; do [ "$(cat $g 2>/dev/null)" = "$WANT" ] && GIDX=${g##*/} && break; done
  [ -n "$GIDX" ] && break; sleep 0.1
done
hostname rxe-vm
echo "RXE_VM_READY uptime=$(cut -d' ' -f1 /proc/uptime)"
cp /cmd $N/run/rxe-vm-cmd
chroot $N /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
  RXE_DEV=rxe0 RXE_IP=$IP RXE_GID_INDEX=$GIDX \
  /bin/bash -c 'ulimit -l unlimited; . /run/rxe-vm-cmd' < /dev/null
rc=$?
sync
printf '\nRXE_VM_EXIT=%s uptime=%s\n' "$rc" "$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
EOF
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet) > "$WORK/initrd.cpio"

# ---------------------------------------------------------------- boot
if [ "$ACCEL" = auto ]; then
  ACCEL=tcg
  if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; fi
fi
case "$ACCEL" in
  kvm) ACC=(-accel kvm -cpu host) ;;
  *)   ACC=(-accel tcg,thread=multi -cpu max) ;;
esac
log "initramfs ready ($(du -h "$WORK/initrd.cpio" | cut -f1)) after $(elapsed)s; kernel $KVER; booting (accel=$ACCEL)"
# boot watchdog: kill the VM if the guest has not reported RXE_VM_READY in time
( for _ in $(seq "$BOOT_TIMEOUT"); do
    sleep 1; [ -e "$WORK/done" ] && exit 0; grep -q '^RXE_VM_READY' "$WORK/console.log" 2>/dev/null && exit 0
  done
  echo "rxe-vm: guest not ready after ${BOOT_TIMEOUT}s, killing VM" >&2; kill "$(cat "$WORK/qemu.pid" 2>/dev/null)" 2>/dev/null ) &
WATCHDOG=$!
set +e
timeout -k 10 $((TIMEOUT + BOOT_TIMEOUT + 60)) qemu-system-x86_64 "${ACC[@]}" -m "$MEM" -smp "$SMP" \
  -display none -monitor none -serial stdio -nic none -no-reboot -pidfile "$WORK/qemu.pid" \
  -kernel "$VMLINUZ" -initrd "$WORK/initrd.cpio" \
  -append "console=ttyS0 quiet panic=-1 rdinit=/init" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap,id=hostroot \
  "${QEMU_SHARES[@]+"${QEMU_SHARES[@]}"}" < /dev/null 2>&1 | sed -u 's/\r$//' | tee "$WORK/console.log" | grep -v '^RXE_VM_EXIT='
set -e
touch "$WORK/done"; wait "$WATCHDOG" 2>/dev/null || true
rc=$(sed -n 's/^RXE_VM_EXIT=\([0-9]*\).*/\1/p' "$WORK/console.log" | tail -1)
log "VM finished after $(elapsed)s total; $(grep -o 'RXE_VM_READY.*' "$WORK/console.log" | head -1); exit ${rc:-125}"
exit "${rc:-125}"
