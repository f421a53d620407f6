use std::ops::RangeInclusive;

/// Free text people type (job names, proposal titles and descriptions): trimmed, its length
/// checked in characters, then HTML-escaped so that a page showing it cannot be made to run
/// markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscapedText(String);

impl EscapedText {
    pub fn parse(raw: &str, chars: RangeInclusive<usize>) -> Result<Self, String> {
        if raw.chars().any(is_hidden) {
            return Err(
                "must not contain control characters, direction overrides or zero-width characters"
                    .into(),
            );
        }
        let trimmed = raw.trim();
        if !chars.contains(&trimmed.chars().count()) {
            return Err(format!(
                "must be {} to {} characters long",
                chars.start(),
                chars.end()
            ));
        }
        Ok(Self(escape_html(trimmed)))
    }

    /// Text a client sends without anyone typing it (a `User-Agent` header): never refused, but
    /// kept to its first `max_chars` characters, without hidden characters or line breaks, then
    /// escaped as `parse` escapes.
    pub fn sanitize(raw: &str, max_chars: usize) -> Self {
        let visible: String = raw
            .chars()
            .filter(|&c| !is_hidden(c))
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        let kept: String = visible.trim().chars().take(max_chars).collect();
        Self(escape_html(kept.trim_end()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Characters a reader cannot see that change how text reads or is processed: controls other
/// than line breaks and tabs, bidirectional overrides and marks, zero-width characters.
pub(crate) fn is_hidden(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_text_is_kept_short_visible_and_escaped() {
        let sanitized = |raw: &str| EscapedText::sanitize(raw, 10).into_string();
        assert_eq!(sanitized("  curl/8.5 "), "curl/8.5");
        assert_eq!(sanitized("a\u{0}b\u{202e}c\u{200b}d"), "abcd");
        assert_eq!(sanitized("line\r\nbreak"), "line  brea");
        assert_eq!(sanitized(&"x".repeat(1000)), "x".repeat(10));
        assert_eq!(sanitized("<b>"), "&lt;b&gt;");
        assert_eq!(sanitized(""), "");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#x27;y&#x27;)&lt;/script&gt;"
        );
        assert_eq!(escape_html("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn refuses_hidden_characters_but_keeps_line_breaks() {
        for hostile in [
            "a\u{0}b",
            "\u{202E}evil",
            "ad\u{200B}min",
            "x\u{FEFF}",
            "bell\u{7}",
        ] {
            assert!(EscapedText::parse(hostile, 1..=50).is_err(), "{hostile:?}");
        }
        assert!(EscapedText::parse("line one\nline two\ttabbed", 1..=50).is_ok());
    }

    #[test]
    fn counts_characters_after_trimming_and_before_escaping() {
        assert_eq!(
            EscapedText::parse("  a<b ", 1..=3).unwrap().into_string(),
            "a&lt;b"
        );
        assert!(EscapedText::parse("   ", 1..=3).is_err());
        assert!(EscapedText::parse("abcd", 1..=3).is_err());
        assert!(EscapedText::parse("ééé", 1..=3).is_ok());
    }
}
