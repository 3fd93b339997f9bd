//! `spindle hash-password`: print the argon2 hash of a password for
//! `--web-password-hash` / `SPINDLE_WEB_PASSWORD_HASH`, so the password itself need not be
//! stored in a deployment's configuration.

use std::process::ExitCode;

/// Reads a password (see [`read_password`]) and prints its hash.
pub fn command() -> anyhow::Result<ExitCode> {
    println!("{}", spindle_web_ui::hash_password(&read_password()?)?);
    Ok(ExitCode::SUCCESS)
}

/// A password typed twice on the terminal (not shown), or stdin's first line.
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
