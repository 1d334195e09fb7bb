//! Just enough of a BTF reader to find struct member offsets in the running
//! kernel (`/sys/kernel/btf/vmlinux`).
//!
//! Written here rather than taken from a crate: aya-obj parses BTF but keeps
//! member offsets private, and btf-rs is LGPL. The format is small and
//! stable (see the kernel's `Documentation/bpf/btf.rst`); every length is
//! checked against the data, so a damaged file gives an error, not a panic.
use std::collections::HashMap;

use thiserror::Error;
use tracer_common::wire::KernelOffsets;

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("not BTF data (bad magic)")]
    BadMagic,
    #[error("BTF data is truncated at byte {0}")]
    Truncated(usize),
    #[error("unknown BTF type kind {0}")]
    UnknownKind(u32),
    #[error("struct {0} not found in the kernel's BTF")]
    NoStruct(String),
    #[error("member {1} of struct {0} not found in the kernel's BTF")]
    NoMember(String, String),
}

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

#[derive(Clone, Debug)]
struct Member {
    name: u32,
    ty: u32,
    bit_offset: u32,
}

#[derive(Clone, Debug)]
struct Type {
    name: u32,
    kind: u32,
    /// Size for ints, structs, unions; referenced type for modifiers.
    size_or_type: u32,
    members: Vec<Member>,
    /// (element type, count) for arrays.
    array: Option<(u32, u32)>,
}

/// Parsed kernel types (only what offset lookups need).
pub struct KernelBtf {
    types: Vec<Type>,
    strings: Vec<u8>,
    structs: HashMap<String, u32>,
}

fn u32_at(d: &[u8], at: usize) -> Result<u32, BtfError> {
    d.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(BtfError::Truncated(at))
}

impl KernelBtf {
    pub fn from_sys_fs() -> anyhow::Result<Self> {
        let path = "/sys/kernel/btf/vmlinux";
        let data = std::fs::read(path).map_err(|e| {
            anyhow::anyhow!(
                "{path}: {e}: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF); tracer needs it"
            )
        })?;
        Ok(Self::parse(&data)?)
    }

    pub fn parse(d: &[u8]) -> Result<Self, BtfError> {
        if d.len() < 24 || d[0..2] != [0x9f, 0xeb] {
            return Err(BtfError::BadMagic);
        }
        let hdr_len = u32_at(d, 4)? as usize;
        let type_off = u32_at(d, 8)? as usize;
        let type_len = u32_at(d, 12)? as usize;
        let str_off = u32_at(d, 16)? as usize;
        let str_len = u32_at(d, 20)? as usize;
        let tstart = hdr_len
            .checked_add(type_off)
            .ok_or(BtfError::Truncated(0))?;
        let tend = tstart
            .checked_add(type_len)
            .ok_or(BtfError::Truncated(tstart))?;
        let sstart = hdr_len.checked_add(str_off).ok_or(BtfError::Truncated(0))?;
        let send = sstart
            .checked_add(str_len)
            .ok_or(BtfError::Truncated(sstart))?;
        if tend > d.len() || send > d.len() {
            return Err(BtfError::Truncated(d.len()));
        }
        let strings = d[sstart..send].to_vec();
        // Type ids start at 1; slot 0 is void.
        let mut types = vec![Type {
            name: 0,
            kind: 0,
            size_or_type: 0,
            members: vec![],
            array: None,
        }];
        let mut at = tstart;
        while at < tend {
            let name = u32_at(d, at)?;
            let info = u32_at(d, at + 4)?;
            let size_or_type = u32_at(d, at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut t = Type {
                name,
                kind,
                size_or_type,
                members: vec![],
                array: None,
            };
            match kind {
                KIND_INT => at += 4,
                2 | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | 12 | 16
                | KIND_TYPE_TAG => {}
                KIND_ARRAY => {
                    t.array = Some((u32_at(d, at)?, u32_at(d, at + 8)?));
                    at += 12;
                }
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = at + i * 12;
                        let off = u32_at(d, m + 8)?;
                        t.members.push(Member {
                            name: u32_at(d, m)?,
                            ty: u32_at(d, m + 4)?,
                            bit_offset: if kind_flag { off & 0x00ff_ffff } else { off },
                        });
                    }
                    at += vlen * 12;
                }
                6 | 13 => at += vlen * 8,
                14 | 17 => at += 4,
                15 | 19 => at += vlen * 12,
                k => return Err(BtfError::UnknownKind(k)),
            }
            types.push(t);
        }
        let mut btf = Self {
            types,
            strings,
            structs: HashMap::new(),
        };
        for (id, t) in btf.types.iter().enumerate() {
            if t.kind == KIND_STRUCT && t.name != 0 {
                let name = btf.str_at(t.name).to_owned();
                btf.structs.entry(name).or_insert(id as u32);
            }
        }
        Ok(btf)
    }

    fn str_at(&self, off: u32) -> &str {
        let s = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    /// Byte offset and type of `member` in `strct`, looking inside anonymous
    /// struct and union members as C does.
    fn find(&self, id: u32, member: &str, depth: u32) -> Option<(u32, u32)> {
        let t = self.types.get(id as usize)?;
        if depth > 8 {
            return None;
        }
        for m in &t.members {
            if m.name != 0 && self.str_at(m.name) == member {
                return Some((m.bit_offset / 8, m.ty));
            }
        }
        for m in &t.members {
            if m.name == 0 {
                let inner = self.strip(m.ty);
                if let Some((off, ty)) = self.find(inner, member, depth + 1) {
                    return Some((m.bit_offset / 8 + off, ty));
                }
            }
        }
        None
    }

    fn strip(&self, mut id: u32) -> u32 {
        for _ in 0..16 {
            match self.types.get(id as usize) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.size_or_type
                }
                _ => break,
            }
        }
        id
    }

    fn size_of(&self, id: u32) -> u32 {
        let id = self.strip(id);
        match self.types.get(id as usize) {
            Some(t) if t.kind == KIND_ARRAY => {
                let (elem, n) = t.array.unwrap_or((0, 0));
                self.size_of(elem).saturating_mul(n)
            }
            Some(t) if t.kind == 2 => 8,
            Some(t) => t.size_or_type,
            None => 0,
        }
    }

    /// Offset of `strct.member` in bytes.
    pub fn offset(&self, strct: &str, member: &str) -> Result<u32, BtfError> {
        self.member(strct, member).map(|(off, _)| off)
    }

    fn member(&self, strct: &str, member: &str) -> Result<(u32, u32), BtfError> {
        let id = *self
            .structs
            .get(strct)
            .ok_or_else(|| BtfError::NoStruct(strct.into()))?;
        self.find(id, member, 0)
            .ok_or_else(|| BtfError::NoMember(strct.into(), member.into()))
    }

    /// Size in bytes of `strct.member`.
    pub fn member_size(&self, strct: &str, member: &str) -> Result<u32, BtfError> {
        let (_, ty) = self.member(strct, member)?;
        Ok(self.size_of(ty))
    }

    /// The offsets the eBPF programs read task and mm fields at.
    pub fn kernel_offsets(&self) -> Result<KernelOffsets, BtfError> {
        Ok(KernelOffsets {
            task_pid: self.offset("task_struct", "pid")?,
            task_tgid: self.offset("task_struct", "tgid")?,
            task_start_time: self.offset("task_struct", "start_time")?,
            task_exit_code: self.offset("task_struct", "exit_code")?,
            task_mm: self.offset("task_struct", "mm")?,
            mm_arg_start: self.offset("mm_struct", "arg_start")?,
            mm_arg_end: self.offset("mm_struct", "arg_end")?,
            mm_env_start: self.offset("mm_struct", "env_start")?,
            mm_env_end: self.offset("mm_struct", "env_end")?,
            mm_saved_auxv: self.offset("mm_struct", "saved_auxv")?,
            mm_saved_auxv_size: self.member_size("mm_struct", "saved_auxv")?,
            task_comm: self.offset("task_struct", "comm")?,
            ..self.cwd_offsets().unwrap_or_default()
        })
    }

    /// The offsets of the working directory walk, all or none.
    fn cwd_offsets(&self) -> Result<KernelOffsets, BtfError> {
        Ok(KernelOffsets {
            task_fs: self.offset("task_struct", "fs")?,
            fs_pwd: self.offset("fs_struct", "pwd")?,
            path_mnt: self.offset("path", "mnt")?,
            path_dentry: self.offset("path", "dentry")?,
            dentry_parent: self.offset("dentry", "d_parent")?,
            dentry_name: self.offset("dentry", "d_name")? + self.offset("qstr", "name")?,
            mount_mnt: self.offset("mount", "mnt")?,
            mount_parent: self.offset("mount", "mnt_parent")?,
            mount_mountpoint: self.offset("mount", "mnt_mountpoint")?,
            vfsmount_root: self.offset("vfsmount", "mnt_root")?,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(matches!(KernelBtf::parse(b"nope"), Err(BtfError::BadMagic)));
        let mut d = vec![0x9f, 0xeb, 1, 0];
        d.extend_from_slice(&24u32.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&1000u32.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(KernelBtf::parse(&d), Err(BtfError::Truncated(_))));
        // Every prefix of a real header must fail cleanly.
        for n in 0..d.len() {
            assert!(KernelBtf::parse(&d[..n]).is_err());
        }
    }

    #[test]
    fn finds_task_and_mm_offsets_in_the_running_kernel() {
        let btf = KernelBtf::from_sys_fs().expect("this machine kind has BTF");
        let o = btf.kernel_offsets().expect("offsets");
        assert!(o.task_tgid > 0 && o.task_pid > 0 && o.task_tgid != o.task_pid);
        assert!(o.mm_arg_end == o.mm_arg_start + 8, "{o:?}");
        assert!(o.mm_saved_auxv_size >= 2 * 8 * 20, "{o:?}");
        assert!(o.task_fs > 0 && o.fs_pwd > 0 && o.dentry_name > 0, "{o:?}");
        assert!(o.mount_parent > 0 && o.mount_mountpoint > 0, "{o:?}");
    }
}
