//! Driving `greet` and `claim` as two processes, the way two people would: each prints its code,
//! each types the code the other read aloud (or a wrong one).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::member::Member;

/// What one person types when asked for the other's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The code the other side's screen shows (what a person hears).
    Heard,
    /// One of this side's choices that is not the heard code.
    Wrong,
}

/// How one side ended.
#[derive(Debug, Clone)]
pub struct SideResult {
    /// Exit status 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The code it showed, if it got that far.
    pub code: Option<String>,
    /// The choices it offered.
    pub choices: Vec<String>,
}

struct Side {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout: String,
    stderr: std::thread::JoinHandle<String>,
    code: Option<String>,
    choices: Vec<String>,
    prompted: bool,
}

impl Side {
    fn spawn(member: &Member, args: &[&str]) -> Side {
        let mut child = member
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting strongroom");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Side {
            stdin: child.stdin.take(),
            child,
            lines,
            stdout: String::new(),
            stderr,
            code: None,
            choices: Vec::new(),
            prompted: false,
        }
    }

    /// Reads output until the code prompt, the end of output, or the deadline.
    fn read_until_prompt(&mut self, deadline: Instant) {
        while !self.prompted {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push_str(&line);
                    self.stdout.push('\n');
                    if let Some(code) = line.strip_prefix("Your code: ") {
                        self.code = Some(code.trim().to_owned());
                    }
                    if let Some(rest) = line.strip_prefix("Enter the code read to you (choices: ") {
                        self.choices = rest
                            .trim_end_matches("):")
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect();
                        self.prompted = true;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn type_line(&mut self, text: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{text}");
            let _ = stdin.flush();
        }
    }

    fn finish(mut self, deadline: Instant) -> SideResult {
        drop(self.stdin.take());
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                _ if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let status = self.child.wait().expect("waiting for strongroom");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stdout.push_str(&line);
            self.stdout.push('\n');
        }
        SideResult {
            success: status.success(),
            stdout: self.stdout,
            stderr: self.stderr.join().unwrap_or_default(),
            code: self.code,
            choices: self.choices,
        }
    }
}

fn choose(side: &Side, heard: Option<&String>, pick: Pick) -> String {
    match (pick, heard) {
        (Pick::Heard, Some(code)) => code.clone(),
        (Pick::Wrong, heard) => side
            .choices
            .iter()
            .find(|c| Some(*c) != heard)
            .cloned()
            .expect("a wrong choice"),
        (Pick::Heard, None) => "NONE".into(),
    }
}

/// Runs `greet INVITATION` for `greeter` and `claim INVITATION CLAIM_ARGS...` for `claimer`
/// concurrently; each side types according to its [`Pick`]. Returns (greeter, claimer).
pub fn greet_and_claim(
    greeter: &Member,
    claimer: &Member,
    invitation: &str,
    claim_args: &[&str],
    greeter_pick: Pick,
    claimer_pick: Pick,
) -> (SideResult, SideResult) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut g = Side::spawn(greeter, &["greet", invitation]);
    let mut args = vec!["claim", invitation];
    args.extend_from_slice(claim_args);
    let mut c = Side::spawn(claimer, &args);
    g.read_until_prompt(deadline);
    c.read_until_prompt(deadline);
    if g.prompted {
        let text = choose(&g, c.code.as_ref(), greeter_pick);
        g.type_line(&text);
    }
    if c.prompted {
        let text = choose(&c, g.code.as_ref(), claimer_pick);
        c.type_line(&text);
    }
    (g.finish(deadline), c.finish(deadline))
}
