//! Server-rendered pages. No scripts, fonts or styles from anywhere but here.

pub mod autotopup;
pub mod billing;
pub mod billing_view;
pub mod chart;
pub mod format;
pub mod success;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1b1f24}\
main{max-width:32rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 3px #0002}\
h1{font-size:1.4rem;margin:0 0 1rem}.big{font-size:2rem;font-weight:700}.muted{color:#555}\
a{color:#0b57d0}.ok{color:#0a7a33}.warn{color:#9a5b00}.err{color:#b3261e}";

/// A complete page around `body` (already escaped HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · creditd</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
