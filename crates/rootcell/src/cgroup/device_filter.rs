//! cgroup v2's device controller is an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the cgroup. This module turns
//! the planned device rules into that program's instructions (pure, unit
//! tested); `process::sys` loads and attaches it.
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32
//! major; u32 minor; }`, `access_type` being `access << 16 | type`, and
//! returns 1 to allow, 0 to deny. Rules are checked last to first: the
//! last rule matching the request decides, as the v1 controller's state
//! after writing the rules in order would; no match allows (a fresh v1
//! cgroup allows everything). An allow rule matches a request whose
//! access it covers entirely; a deny rule one it shares any access with.

use crate::plan::DeviceRule;

/// `BPF_DEVCG_DEV_BLOCK`, `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
/// `BPF_DEVCG_ACC_MKNOD`, `_READ`, `_WRITE`.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One `struct bpf_insn`, encoded as the kernel reads it (little or big
/// endian as the host; the register nibbles in host bit order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU64_MOV_X: u8 = 0xbf; // dst = src
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const ALU64_AND_K: u8 = 0x57; // dst &= imm
const ALU64_RSH_K: u8 = 0x77; // dst >>= imm
const JMP_JNE_K: u8 = 0x55; // if dst != imm: pc += off
const JMP_JEQ_K: u8 = 0x15; // if dst == imm: pc += off
const JMP_EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

impl Insn {
    /// The 8 bytes of `struct bpf_insn`.
    pub fn to_bytes(self) -> [u8; 8] {
        let regs = if cfg!(target_endian = "little") {
            (self.src << 4) | (self.dst & 0xf)
        } else {
            (self.dst << 4) | (self.src & 0xf)
        };
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        [
            self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }
}

/// The access bits of `r`, `w`, `m`.
fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |acc, c| match c {
        'r' => acc | ACC_READ,
        'w' => acc | ACC_WRITE,
        'm' => acc | ACC_MKNOD,
        _ => acc,
    })
}

/// The instructions of one rule: tests that jump past the block when the
/// request does not match, then `return allow`.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    // r2 = access, r3 = type, r4 = major, r5 = minor (set by the prologue).
    let mut tests: Vec<Insn> = Vec::new();
    if let Some(kind) = rule.kind {
        let t = if kind == 'b' { DEV_BLOCK } else { DEV_CHAR };
        tests.push(insn(JMP_JNE_K, 3, 0, 0, t));
    }
    let bits = access_bits(&rule.access);
    if rule.allow {
        // Every requested bit must be in the rule: r6 = r2 & !bits == 0.
        if bits != ACC_MKNOD | ACC_READ | ACC_WRITE {
            tests.push(insn(ALU64_MOV_X, 6, 2, 0, 0));
            tests.push(insn(ALU64_AND_K, 6, 0, 0, !bits & 7));
            tests.push(insn(JMP_JNE_K, 6, 0, 0, 0));
        }
    } else {
        // Some requested bit is in the rule: r6 = r2 & bits != 0.
        tests.push(insn(ALU64_MOV_X, 6, 2, 0, 0));
        tests.push(insn(ALU64_AND_K, 6, 0, 0, bits));
        tests.push(insn(JMP_JEQ_K, 6, 0, 0, 0));
    }
    if let Some(major) = rule.major {
        tests.push(insn(JMP_JNE_K, 4, 0, 0, major as i32));
    }
    if let Some(minor) = rule.minor {
        tests.push(insn(JMP_JNE_K, 5, 0, 0, minor as i32));
    }
    let n = tests.len();
    // Each jump skips the rest of the block: the tests after it and the
    // two instructions of the verdict.
    for (i, t) in tests.iter_mut().enumerate() {
        if t.code == JMP_JNE_K || t.code == JMP_JEQ_K {
            t.off = (n - i - 1 + 2) as i16;
        }
    }
    tests.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)));
    tests.push(insn(JMP_EXIT, 0, 0, 0, 0));
    tests
}

/// The whole program for `rules`.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut out = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0), // r2 = ctx->access_type
        insn(ALU64_MOV_X, 3, 2, 0, 0),
        insn(ALU64_AND_K, 3, 0, 0, 0xffff), // r3 = type
        insn(ALU64_RSH_K, 2, 0, 0, 16),     // r2 = access
        insn(LDX_MEM_W, 4, 1, 4, 0),        // r4 = ctx->major
        insn(LDX_MEM_W, 5, 1, 8, 0),        // r5 = ctx->minor
    ];
    for rule in rules.iter().rev() {
        out.extend(rule_block(rule));
    }
    out.push(insn(ALU64_MOV_K, 0, 0, 0, 1));
    out.push(insn(JMP_EXIT, 0, 0, 0, 0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on a request, as the kernel would: a tiny
    /// interpreter of the instructions `program` emits.
    fn run(prog: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [((access << 16) | kind) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            let imm = i.imm as i64 as u64;
            pc += 1;
            match i.code {
                LDX_MEM_W => r[d] = u64::from(ctx[i.off as usize / 4]),
                ALU64_MOV_X => r[d] = r[s],
                ALU64_MOV_K => r[d] = imm,
                ALU64_AND_K => r[d] &= imm,
                ALU64_RSH_K => r[d] >>= imm,
                JMP_JNE_K if r[d] != imm => pc += i.off as usize,
                JMP_JEQ_K if r[d] == imm => pc += i.off as usize,
                JMP_JNE_K | JMP_JEQ_K => {}
                JMP_EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    fn rule(allow: bool, kind: Option<char>, major: Option<u32>, access: &str) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor: major.map(|_| 3),
            access: access.into(),
        }
    }

    #[test]
    fn the_last_matching_rule_decides() {
        let rules = [
            rule(false, None, None, "rwm"),
            rule(true, Some('c'), Some(1), "rw"),
            rule(true, Some('c'), None, "m"),
        ];
        let p = program(&rules);
        let (r, w, m) = (ACC_READ, ACC_WRITE, ACC_MKNOD);
        assert_eq!(run(&p, DEV_CHAR, r | w, 1, 3), 1, "c 1:3 rw allowed");
        assert_eq!(run(&p, DEV_CHAR, r, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, r, 1, 4), 0, "another minor");
        assert_eq!(run(&p, DEV_BLOCK, r, 1, 3), 0, "a block device");
        assert_eq!(run(&p, DEV_CHAR, m, 9, 9), 1, "mknod of any char");
        assert_eq!(run(&p, DEV_CHAR, m | r, 9, 9), 0);
        // No deny-all: everything not denied is allowed.
        let p = program(&[rule(false, Some('c'), Some(1), "w")]);
        assert_eq!(run(&p, DEV_CHAR, r, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, r | w, 1, 3), 0);
        assert_eq!(run(&p, DEV_BLOCK, w, 8, 0), 1);
    }

    #[test]
    fn encoding_puts_dst_in_the_low_nibble_on_little_endian() {
        let b = insn(LDX_MEM_W, 2, 1, 4, 0).to_bytes();
        assert_eq!(b[0], 0x61);
        if cfg!(target_endian = "little") {
            assert_eq!(b[1], 0x12);
            assert_eq!(&b[2..4], &[4, 0]);
        }
    }
}
