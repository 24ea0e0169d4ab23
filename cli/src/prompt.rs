//! Comparing codes with a person, on a terminal or through standard input for scripts.

use std::io::{BufRead, IsTerminal, Write};

use strongroom_engine::invite::CodeUi;
use strongroom_protocol::sas::SasCode;

/// Prints this side's code and reads the other's pick from standard input. When standard input
/// is not a terminal it prints exactly the two lines scripts rely on (DESIGN.md §10).
pub struct StdinCodes;

impl CodeUi for StdinCodes {
    fn exchange_codes(&self, own: SasCode, candidates: [SasCode; 4]) -> std::io::Result<String> {
        let choices: Vec<&str> = candidates.iter().map(|c| c.as_str()).collect();
        let mut out = std::io::stdout().lock();
        let terminal = std::io::stdin().is_terminal();
        if terminal {
            writeln!(out, "Read this code aloud to the other person.")?;
        }
        writeln!(out, "Your code: {own}")?;
        if terminal {
            write!(
                out,
                "Enter the code read to you (choices: {}): ",
                choices.join(" ")
            )?;
        } else {
            writeln!(
                out,
                "Enter the code read to you (choices: {}):",
                choices.join(" ")
            )?;
        }
        out.flush()?;
        drop(out);
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "no code was entered",
            ));
        }
        Ok(line.trim().to_owned())
    }
}
