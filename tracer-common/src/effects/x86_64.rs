//! The x86_64 table, sorted by syscall number.
use super::ArgFmt::*;
use super::Direction::*;
use super::SizeRule::*;
use super::*;

const fn row(
    nr: u32,
    name: &'static str,
    args: &'static [(&'static str, ArgFmt)],
    effects: Effects,
) -> SyscallInfo {
    SyscallInfo { nr, name, args, effects }
}

pub static TABLE: &[SyscallInfo] = &[
    row(0, "read", &[("fd", Fd), ("buf", Buf), ("count", UInt)], Effects::Known(&[out_ret(1)])),
    row(1, "write", &[("fd", Fd), ("buf", Buf), ("count", UInt)], Effects::Known(&[in_arg(1, 2)])),
    row(2, "open", &[("pathname", Str), ("flags", OpenFlags), ("mode", Octal)], Effects::Known(&[path(0)])),
    row(3, "close", &[("fd", Fd)], Effects::NoMemory),
    row(4, "stat", &[("pathname", Str), ("statbuf", Ptr)], Effects::Known(&[path(0), out_const(1, 144)])),
    row(7, "poll", &[("fds", Ptr), ("nfds", UInt), ("timeout", Int)], Effects::Known(&[effect(0, InOut, ArgTimes, 1, 8)])),
    row(59, "execve", &[("pathname", Str), ("argv", Ptr), ("envp", Ptr)], Effects::Known(&[path(0), effect(1, In, StringArray, 0, 0), effect(2, In, StringArray, 0, 0)])),
];
