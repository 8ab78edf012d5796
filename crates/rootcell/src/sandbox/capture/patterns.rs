//! Pattern matching of `--result-files`.

use super::*;

// ---------------------------------------------------------------------
// Pattern matching: one small automaton over path components, stepped
// while the tree is walked, so each directory entry is matched once
// against the live states only (no quadratic work, unmatched subtrees
// are never read for copying).

/// One component of a pattern.
pub(super) enum Part {
    Literal(Vec<u8>),
    /// A component with `*`, `?` or `[`; `dot`: the pattern starts with
    /// `.`, so it may match dot files.
    Wild {
        glob: GlobMatcher,
        dot: bool,
    },
    /// `**`: any number of directories (not dot directories).
    AnyDirs,
}

pub(super) struct Matcher {
    pub(super) patterns: Vec<Vec<Part>>,
}

/// (pattern, index of the next part to match).
pub(super) type State = (usize, usize);

pub(super) fn has_magic(part: &[u8]) -> bool {
    part.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'{'))
}

/// Compiles one absolute pattern into parts.
pub(super) fn compile(pattern: &Path) -> std::result::Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    for component in pattern.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        let bytes = name.as_bytes();
        if bytes == b"**" {
            parts.push(Part::AnyDirs);
        } else if has_magic(bytes) {
            // Within one component `**` is just `*` (as in Python).
            let mut text = String::from_utf8_lossy(bytes).into_owned();
            while text.contains("**") {
                text = text.replace("**", "*");
            }
            let glob = GlobBuilder::new(&text)
                .literal_separator(true)
                .backslash_escape(false)
                .allow_unclosed_class(true)
                .empty_alternates(true)
                .build()
                .map_err(|e| e.kind().to_string())?
                .compile_matcher();
            parts.push(Part::Wild {
                glob,
                dot: bytes.first() == Some(&b'.'),
            });
        } else {
            parts.push(Part::Literal(bytes.to_vec()));
        }
    }
    Ok(parts)
}

impl Matcher {
    pub(super) fn new(result_files: &ResultFiles) -> Result<Matcher> {
        let patterns = result_files
            .patterns
            .iter()
            .map(|p| compile(p).map_err(|e| Error::usage(PATTERNS_FLAG, format!("{p:?}: {e}"))))
            .collect::<Result<_>>()?;
        Ok(Matcher { patterns })
    }

    /// The states at `/`.
    pub(super) fn start(&self) -> Vec<State> {
        let mut states = (0..self.patterns.len()).map(|p| (p, 0)).collect();
        self.close(&mut states);
        states
    }

    /// Adds the states `**` can skip to (zero directories), sorted, unique.
    pub(super) fn close(&self, states: &mut Vec<State>) {
        let mut i = 0;
        while i < states.len() {
            let (p, n) = states[i];
            if matches!(self.patterns[p].get(n), Some(Part::AnyDirs)) {
                states.push((p, n + 1));
            }
            i += 1;
        }
        states.sort_unstable();
        states.dedup();
    }

    /// Whether some pattern is complete in `states`.
    pub(super) fn complete(&self, states: &[State]) -> bool {
        states.iter().any(|&(p, n)| n == self.patterns[p].len())
    }

    /// The states after the entry `name`.
    pub(super) fn step(&self, states: &[State], name: &[u8]) -> Vec<State> {
        let hidden = name.first() == Some(&b'.');
        let mut next = Vec::new();
        for &(p, n) in states {
            match self.patterns[p].get(n) {
                Some(Part::Literal(lit)) if lit == name => next.push((p, n + 1)),
                Some(Part::Wild { glob, dot })
                    if (*dot || !hidden) && glob.is_match(OsStr::from_bytes(name)) =>
                {
                    next.push((p, n + 1))
                }
                Some(Part::AnyDirs) if !hidden => next.push((p, n)),
                _ => {}
            }
        }
        self.close(&mut next);
        next
    }
}
