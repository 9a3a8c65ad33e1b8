"""Run a command with the host's XSAVE register set hidden from ptrace, then exec it.

Debian 12's UML (6.1) saves a guest's FPU state with PTRACE_SETREGSET(NT_X86_XSTATE) from a
fixed 832-byte buffer. The host kernel takes only a whole XSAVE area there, and on a host with
AVX-512 or AMX that area is larger, so the call fails with EFAULT and the guest's init is killed
("ptrace set fp regs failed, errno = 14"). When GETREGSET fails at boot, UML falls back to the
FXSAVE requests, which every x86-64 host accepts.

Those save only the x87 and SSE registers, and measured on an AVX-512 host the guest's static
busybox then segfaults in its first AVX-512 string routine. So the guest's glibc is told to use
SSE only (`GUEST_TUNABLES`, passed on UML's command line, which the guest kernel hands to init as
its environment).

The filter is inherited by UML's host processes; it touches no other system call.
"""

import errno
import os
import sys

PTRACE_GETREGSET, PTRACE_SETREGSET, NT_X86_XSTATE = 0x4204, 0x4205, 0x202
GUEST_TUNABLES = ("glibc.cpu.hwcaps=-AVX,-AVX2,-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,"
                  "-AVX_Fast_Unaligned_Load")


def install() -> None:
    import pyseccomp as seccomp

    f = seccomp.SyscallFilter(seccomp.ALLOW)
    for request in (PTRACE_GETREGSET, PTRACE_SETREGSET):
        f.add_rule(seccomp.ERRNO(errno.EIO), "ptrace",
                   seccomp.Arg(0, seccomp.EQ, request), seccomp.Arg(2, seccomp.EQ, NT_X86_XSTATE))
    f.load()


if __name__ == "__main__":
    install()
    os.execvp(sys.argv[1], sys.argv[1:])
