#!/usr/bin/env python3
# Captures real /proc/self/fdinfo texts for the vm collector's tun fdinfo parser (test/unit/vm-fdinfo.test.ts).
# Needs root (CAP_NET_ADMIN). The taps are not persistent: they vanish when this script exits.
# Usage: python3 testdata/vm/capture-fdinfo.py [outdir]
import fcntl, os, struct, sys
TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI, IFF_MULTI_QUEUE = 0x0002, 0x1000, 0x0100
out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))

def tap(name, flags):
    fd = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), flags))
    return fd

def save(fname, fd):
    with open(f'/proc/self/fdinfo/{fd}') as f, open(os.path.join(out, fname), 'w') as o:
        o.write(f.read())

save('fdinfo-tap', tap('stratafd0', IFF_TAP | IFF_NO_PI))
q0 = tap('stratafd1', IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE)
q1 = tap('stratafd1', IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE)
save('fdinfo-tap-mq-q0', q0)
save('fdinfo-tap-mq-q1', q1)
save('fdinfo-tun-unattached', os.open('/dev/net/tun', os.O_RDWR))  # no TUNSETIFF yet: no iff line
save('fdinfo-regular-file', os.open('/etc/hostname', os.O_RDONLY))
print(f'{os.uname().release}: fdinfo captured in {out}')
