//! The command lines engines send for every container, parsed without
//! clap: `create`, `run`, `start`, `state`, `kill` and `delete` with runc's
//! global flags, as podman (conmon), containerd and buildah write them.
//! Building clap's parser and its matches took about 0.2 ms of each such
//! command here (phase `runtime: arguments parsed`), a twentieth of a whole
//! `run`, and podman makes four of them per container.
//!
//! This parser accepts only what it knows exactly and answers `None` for
//! anything else: help and version, a flag it does not know or sees twice,
//! a value that is empty or starts with `-`, bundled short flags,
//! `--rootless` without `=VALUE` (whose optional value clap may take from
//! the next word), `--`, words that are not UTF-8. `main` then parses with
//! clap, which also reports every error. The tests check that whatever this
//! parser accepts, clap parses to the same `Cli`.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::{Cli, Command, CreateArgs, Global, LogFormat};

/// `Some` where the command line is one of the forms above.
pub fn parse(argv: &[OsString]) -> Option<Cli> {
    let words: Vec<&str> = argv
        .get(1..)?
        .iter()
        .map(|w| w.to_str())
        .collect::<Option<_>>()?;
    let mut p = Parser {
        words: &words,
        at: 0,
        seen: Vec::new(),
    };
    let mut global = Global {
        root: None,
        log: None,
        log_format: LogFormat::Text,
        debug: false,
        rootless: None,
        systemd_cgroup: false,
        isolation: None,
    };
    // Global flags, then the subcommand.
    let name = loop {
        let word = p.next_word()?;
        if !word.starts_with('-') {
            break word;
        }
        let (flag, inline) = split_long(word)?;
        match flag {
            // Not global: only before the subcommand, and only with `=`.
            "--rootless" => {
                let value = nonempty(inline)?;
                global.rootless = Some(p.note(flag, value)?.to_owned());
            }
            _ => p.global_flag(&mut global, flag, inline)?,
        }
    };
    let kind = Kind::of(name)?;
    let mut flags = SubFlags::default();
    let mut positional: Vec<&str> = Vec::new();
    while let Some(word) = p.next_word() {
        if !word.starts_with('-') {
            positional.push(nonempty(Some(word))?);
            continue;
        }
        let (flag, inline) = match word {
            "-b" | "-d" | "-a" | "-f" => (word, None),
            _ => split_long(word)?,
        };
        if p.global_flag(&mut global, flag, inline).is_some() {
            continue;
        }
        p.sub_flag(kind, &mut flags, flag, inline)?;
    }
    let one = |positional: &[&str]| match positional {
        [id] => Some(id.to_string()),
        _ => None,
    };
    let create = |flags: &SubFlags, positional: &[&str]| -> Option<CreateArgs> {
        Some(CreateArgs {
            id: one(positional)?,
            bundle: flags.bundle.clone().unwrap_or_else(|| PathBuf::from(".")),
            pid_file: flags.pid_file.clone(),
            console_socket: flags.console_socket.clone(),
            no_pivot: flags.no_pivot,
            no_new_keyring: flags.no_new_keyring,
            preserve_fds: flags.preserve_fds.unwrap_or(0),
        })
    };
    let command = match kind {
        Kind::Create => Command::Create(create(&flags, &positional)?),
        Kind::Run => Command::Run {
            create: create(&flags, &positional)?,
            detach: flags.detach,
            keep: flags.keep,
        },
        Kind::Start => Command::Start {
            id: one(&positional)?,
        },
        Kind::State => Command::State {
            id: one(&positional)?,
        },
        Kind::Kill => match positional[..] {
            [id] => Command::Kill {
                id: id.into(),
                signal: "SIGTERM".into(),
                all: flags.all,
            },
            [id, signal] => Command::Kill {
                id: id.into(),
                signal: signal.into(),
                all: flags.all,
            },
            _ => return None,
        },
        Kind::Delete => Command::Delete {
            id: one(&positional)?,
            force: flags.force,
        },
    };
    Some(Cli { global, command })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Run,
    Start,
    State,
    Kill,
    Delete,
}

impl Kind {
    fn of(name: &str) -> Option<Kind> {
        Some(match name {
            "create" => Kind::Create,
            "run" => Kind::Run,
            "start" => Kind::Start,
            "state" => Kind::State,
            "kill" => Kind::Kill,
            "delete" => Kind::Delete,
            _ => return None,
        })
    }
}

/// The subcommands' own flags.
#[derive(Default)]
struct SubFlags {
    bundle: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    console_socket: Option<PathBuf>,
    no_pivot: bool,
    no_new_keyring: bool,
    preserve_fds: Option<u32>,
    detach: bool,
    keep: bool,
    all: bool,
    force: bool,
}

struct Parser<'a> {
    words: &'a [&'a str],
    at: usize,
    /// Flags seen so far (by their long name): twice is clap's to judge.
    seen: Vec<&'a str>,
}

impl<'a> Parser<'a> {
    fn next_word(&mut self) -> Option<&'a str> {
        let word = self.words.get(self.at).copied();
        self.at += 1;
        word
    }

    /// Records `flag` (its long name) as seen (None if it was already)
    /// and passes `value`.
    fn note<T>(&mut self, flag: &'a str, value: T) -> Option<T> {
        if self.seen.contains(&flag) {
            return None;
        }
        self.seen.push(flag);
        Some(value)
    }

    /// The value of `flag` (recorded as seen): inline (`--flag=value`) or
    /// the next word.
    fn valued(&mut self, flag: &'a str, inline: Option<&'a str>) -> Option<&'a str> {
        let value = self.value(inline)?;
        self.note(flag, value)
    }

    fn value(&mut self, inline: Option<&'a str>) -> Option<&'a str> {
        let value = match inline {
            Some(v) => v,
            None => self.next_word()?,
        };
        if value.starts_with('-') {
            return None;
        }
        nonempty(Some(value))
    }

    /// A flag without a value: `--flag=x` is clap's to refuse.
    fn switch(&mut self, flag: &'a str, inline: Option<&str>) -> Option<bool> {
        match inline {
            None => self.note(flag, true),
            Some(_) => None,
        }
    }

    /// A global flag (clap's `global = true`: before or after the
    /// subcommand). None: not one, or not a form this parser takes.
    fn global_flag(
        &mut self,
        g: &mut Global,
        flag: &'a str,
        inline: Option<&'a str>,
    ) -> Option<()> {
        match flag {
            "--root" => g.root = Some(self.valued(flag, inline)?.into()),
            "--log" => g.log = Some(self.valued(flag, inline)?.into()),
            "--log-format" => {
                g.log_format = match self.valued(flag, inline)? {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return None,
                }
            }
            "--isolation" => {
                let v = self.valued(flag, inline)?;
                g.isolation = Some(rootcell::plan::Isolation::parse(v)?);
            }
            "--debug" => g.debug = self.switch(flag, inline)?,
            "--systemd-cgroup" => g.systemd_cgroup = self.switch(flag, inline)?,
            _ => return None,
        }
        Some(())
    }

    fn sub_flag(
        &mut self,
        kind: Kind,
        f: &mut SubFlags,
        flag: &'a str,
        inline: Option<&'a str>,
    ) -> Option<()> {
        let creates = matches!(kind, Kind::Create | Kind::Run);
        match flag {
            "--bundle" | "-b" if creates => {
                f.bundle = Some(self.valued("--bundle", inline)?.into())
            }
            "--pid-file" if creates => f.pid_file = Some(self.valued(flag, inline)?.into()),
            "--console-socket" if creates => {
                f.console_socket = Some(self.valued(flag, inline)?.into())
            }
            "--preserve-fds" if creates => {
                let v = self.valued(flag, inline)?;
                if !v.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                f.preserve_fds = Some(v.parse().ok()?);
            }
            "--no-pivot" if creates => f.no_pivot = self.switch(flag, inline)?,
            "--no-new-keyring" if creates => f.no_new_keyring = self.switch(flag, inline)?,
            "--detach" | "-d" if kind == Kind::Run => f.detach = self.switch("--detach", inline)?,
            "--keep" if kind == Kind::Run => f.keep = self.switch(flag, inline)?,
            "--all" | "-a" if kind == Kind::Kill => f.all = self.switch("--all", inline)?,
            "--force" | "-f" if kind == Kind::Delete => f.force = self.switch("--force", inline)?,
            _ => return None,
        }
        Some(())
    }
}

/// `--name` or `--name=value`; None for anything else (short flags but
/// the few the caller takes, `--`, `-`).
fn split_long(word: &str) -> Option<(&str, Option<&str>)> {
    if !word.starts_with("--") || word.len() < 3 {
        return None;
    }
    Some(match word.split_once('=') {
        Some((flag, value)) => (flag, Some(value)),
        None => (word, None),
    })
}

fn nonempty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("rootcell")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Whatever the fast parser accepts, clap parses the same; returns
    /// whether it accepted.
    fn agrees(words: &[&str]) -> bool {
        let argv = argv(words);
        let Some(fast) = parse(&argv) else {
            return false;
        };
        match Cli::try_parse_from(&argv) {
            Ok(clap) => assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{words:?}"),
            Err(e) => panic!("{words:?}: the fast parser took what clap refuses: {e}"),
        }
        true
    }

    /// What engines send: podman through conmon, containerd's shim,
    /// buildah, and the bench's own command.
    #[test]
    fn engines_command_lines_take_the_fast_path() {
        // containerd's runc shim puts these before every command.
        let shim = |words: &[&'static str]| -> Vec<&'static str> {
            let mut v = vec![
                "--root",
                "/run/containerd/runc/k8s.io",
                "--log",
                "/run/x/log.json",
                "--log-format",
                "json",
            ];
            v.extend_from_slice(words);
            v
        };
        let lines: Vec<Vec<&str>> = vec![
            shim(&[
                "create",
                "--bundle",
                "/run/x/b",
                "--pid-file",
                "/run/x/init.pid",
                "c1",
            ]),
            shim(&["start", "c1"]),
            shim(&["delete", "--force", "c1"]),
            shim(&["kill", "c1", "9"]),
            shim(&["kill", "--all", "c1", "9"]),
            // conmon (podman), with a terminal.
            vec![
                "--root",
                "/run/runc",
                "--systemd-cgroup",
                "create",
                "--bundle",
                "/var/lib/b",
                "--pid-file",
                "/run/p",
                "--no-new-keyring",
                "--console-socket",
                "/run/s",
                "c2",
            ],
            vec![
                "--log-format=json",
                "--log=/run/l",
                "--root=/run/runc",
                "create",
                "--bundle=/b",
                "--pid-file=/p",
                "--preserve-fds=2",
                "c3",
            ],
            vec!["--root", "/run/runc", "state", "c2"],
            vec!["--root", "/run/runc", "delete", "c2"],
            vec!["--root", "/run/runc", "kill", "c2", "SIGKILL"],
            // bench/lifecycle.sh; buildah's chroot isolation.
            vec!["--root", "/tmp/s", "run", "--bundle", "/tmp/b", "bench"],
            vec![
                "--isolation",
                "chroot",
                "--rootless=true",
                "run",
                "--no-pivot",
                "--keep",
                "c5",
            ],
            vec!["run", "-b", "/b", "-d", "--pid-file", "/p", "c4"],
            vec!["run", "c6", "--root", "/r", "--debug", "-b", "/b"],
            vec!["delete", "-f", "c7"],
            vec!["kill", "-a", "c8"],
        ];
        for words in &lines {
            assert!(agrees(words), "not taken by the fast path: {words:?}");
        }
    }

    /// Forms left to clap (which accepts some, refuses others): the fast
    /// parser must say None, never parse them its own way.
    #[test]
    fn everything_else_is_left_to_clap() {
        let lines: &[&[&str]] = &[
            &[],
            &["--help"],
            &["-h"],
            &["--version"],
            &["-V"],
            &["run", "--help"],
            &["list"],
            &["exec", "c", "true"],
            &["spec"],
            &["create"],
            &["create", "a", "b"],
            &["create", "--bogus", "c"],
            &["create", "-x", "c"],
            &["create", "-bdir", "c"],
            &["create", "-b=dir", "c"],
            &["run", "-dk", "c"],
            &["create", "--no-pivot=true", "c"],
            &["create", "--pid-file", "-p", "c"],
            &["create", "--bundle", "", "c"],
            &["create", "--bundle=", "c"],
            &["create", "--preserve-fds", "x", "c"],
            &["create", "--preserve-fds", "+2", "c"],
            &["create", "--preserve-fds", "99999999999", "c"],
            &["create", "--", "c"],
            &["create", "-", "c"],
            &["create", ""],
            &["--root", "/a", "--root", "/b", "state", "c"],
            &["state", "c", "--root", "/a", "--root", "/b"],
            &["run", "-d", "--detach", "c"],
            &["--log-format", "TEXT", "state", "c"],
            &["--log-format", "yaml", "state", "c"],
            &["--isolation", "nope", "state", "c"],
            &["--rootless", "state", "c"],
            &["--rootless", "true", "state", "c"],
            &["--rootless=", "state", "c"],
            &["state", "--rootless=true", "c"],
            &["--debug=true", "state", "c"],
            &["start"],
            &["start", "a", "b"],
            &["kill", "c", "-9"],
            &["kill", "c", "9", "x"],
            &["delete", "--force", "--force", "c"],
            &["delete", "-d", "c"],
            &["start", "-f", "c"],
            &["state", "-c"],
            &["--bundle", "/b", "run", "c"],
            &["-b", "/b", "run", "c"],
        ];
        for words in lines {
            assert!(
                parse(&argv(words)).is_none(),
                "the fast path took {words:?}"
            );
        }
    }

    /// Every combination of a set of global and subcommand flags, in every
    /// position, each either parsed the same as clap does or left to it.
    #[test]
    fn combinations_parse_as_clap_does() {
        let globals: &[&[&str]] = &[
            &[],
            &["--root", "/r"],
            &["--root=/r"],
            &["--log", "/l", "--log-format", "json"],
            &["--debug"],
            &["--systemd-cgroup"],
            &["--isolation", "oci"],
            &["--isolation=auto"],
        ];
        let subs: &[&[&str]] = &[
            &["create", "c"],
            &["create", "--bundle", "/b", "--no-pivot", "c"],
            &[
                "create",
                "c",
                "--pid-file",
                "/p",
                "--no-new-keyring",
                "--preserve-fds",
                "3",
            ],
            &["create", "--console-socket=/s", "c", "-b", "/b"],
            &["run", "c", "--detach", "--keep"],
            &["run", "-d", "c", "--preserve-fds=0"],
            &["start", "c"],
            &["state", "c"],
            &["kill", "c"],
            &["kill", "--all", "c", "KILL"],
            &["kill", "c", "15", "-a"],
            &["delete", "c"],
            &["delete", "--force", "c"],
        ];
        let mut taken = 0;
        for g in globals {
            for s in subs {
                let before: Vec<&str> = g.iter().chain(s.iter()).copied().collect();
                let mut after: Vec<&str> = s.to_vec();
                after.extend_from_slice(g);
                let mut middle: Vec<&str> = vec![s[0]];
                middle.extend_from_slice(g);
                middle.extend_from_slice(&s[1..]);
                for words in [before, after, middle] {
                    taken += usize::from(agrees(&words));
                }
            }
        }
        assert_eq!(
            taken,
            globals.len() * subs.len() * 3,
            "every combination is taken"
        );
    }

    #[test]
    fn clap_parses_the_same_defaults() {
        // Defaults the fast parser fills in itself.
        assert!(agrees(&["create", "c"]));
        assert!(agrees(&["kill", "c"]));
        assert!(agrees(&["run", "c"]));
    }
}
