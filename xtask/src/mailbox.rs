//! The dev runner's mailbox: a local stand-in for the HTTP mail provider
//! (`MAIL_PROVIDER_URL`). The mail sender job posts each queued message
//! here as it would to a provider (`{from, to, subject, text}`); the
//! mailbox prints it in the terminal, links and all, and keeps it in
//! `.antevus/mail/`, so signing up, invitations and password resets work
//! end to end on a laptop.

use std::path::PathBuf;

use anyhow::Context as _;

/// Where the mailbox listens.
pub const ADDR: &str = "127.0.0.1:4466";

/// Starts the mailbox on [`ADDR`] in a thread of its own.
pub fn start(dir: PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(&dir)?;
    let server = tiny_http::Server::http(ADDR)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot listen on {ADDR} for the dev mailbox"))?;
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            let status = match request.as_reader().read_to_string(&mut body) {
                Ok(_) => match deliver(&dir, &body) {
                    Ok(()) => 202,
                    Err(e) => {
                        eprintln!("dev mailbox: {e:#}");
                        400
                    }
                },
                Err(_) => 400,
            };
            let _ = request.respond(tiny_http::Response::empty(status));
        }
    });
    Ok(())
}

/// Prints one message and keeps it as a file.
fn deliver(dir: &std::path::Path, body: &str) -> anyhow::Result<()> {
    let message: serde_json::Value = serde_json::from_str(body).context("not JSON")?;
    let field = |name: &str| message[name].as_str().unwrap_or_default().to_owned();
    let (to, subject, text) = (field("to"), field("subject"), field("text"));
    println!("\n✉  mail to {to}: {subject}");
    for line in text.lines() {
        println!("   {line}");
    }
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let safe: String = to
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file = dir.join(format!("{millis}-{safe}.txt"));
    std::fs::write(
        &file,
        format!(
            "To: {to}\nFrom: {}\nSubject: {subject}\n\n{text}",
            field("from")
        ),
    )?;
    Ok(())
}
