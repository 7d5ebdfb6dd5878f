//! `exporter login`: the platform's password grant ([`platform::session::login`]), asking on
//! the terminal for what the flags and variables do not give.

use std::io::{BufRead as _, IsTerminal as _};

use exporter_aptible::SecretString;

use crate::output::{self, Ui};
use crate::platform::session::{self, Prompt};
use crate::settings::LoginPlan;

/// Asks on the terminal; the password from stdin with `--password-stdin`.
struct Terminal {
    password_stdin: bool,
}

fn no_terminal(what: &str, how: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "standard input is not a terminal to ask for the {what} (give {how})"
    ))
}

impl Prompt for Terminal {
    fn email(&mut self) -> std::io::Result<String> {
        if !std::io::stdin().is_terminal() {
            return Err(no_terminal("email", "--email or APTIBLE_USERNAME"));
        }
        let email = output::prompt_line("Email: ")?;
        if email.is_empty() {
            return Err(std::io::Error::other("no email given"));
        }
        Ok(email)
    }

    fn password(&mut self) -> std::io::Result<SecretString> {
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            if line.is_empty() {
                return Err(std::io::Error::other("standard input gave no password"));
            }
            return Ok(SecretString::from(line));
        }
        if !std::io::stdin().is_terminal() {
            return Err(no_terminal(
                "password",
                "APTIBLE_PASSWORD or --password-stdin",
            ));
        }
        rpassword::prompt_password("Password: ").map(SecretString::from)
    }

    fn otp_token(&mut self) -> std::io::Result<SecretString> {
        if !std::io::stdin().is_terminal() {
            return Err(no_terminal(
                "one-time code",
                "--otp-token or APTIBLE_OTP_TOKEN",
            ));
        }
        rpassword::prompt_password("Two-factor one-time code: ").map(SecretString::from)
    }
}

/// Log in and store the token; say where it went and when it expires (never the token).
///
/// # Errors
///
/// [`session::LoginError`].
pub async fn run(plan: LoginPlan, ui: Ui) -> anyhow::Result<()> {
    let mut terminal = Terminal {
        password_stdin: plan.password_stdin,
    };
    let done = session::login(plan, &mut terminal).await?;
    ui.info(format!(
        "logged in as {}{}; token written to {}{}",
        done.email,
        if done.used_otp {
            " (with a one-time code)"
        } else {
            ""
        },
        done.path.display(),
        done.expires_at
            .as_deref()
            .map(|e| format!(" (expires {e})"))
            .unwrap_or_default()
    ));
    Ok(())
}
