use std::ops::RangeInclusive;

/// Free text people type (job names, proposal titles and descriptions): trimmed, its length
/// checked in characters, then HTML-escaped so that a page showing it cannot be made to run
/// markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscapedText(String);

impl EscapedText {
    pub fn parse(raw: &str, chars: RangeInclusive<usize>) -> Result<Self, String> {
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

    pub fn into_string(self) -> String {
        self.0
    }
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
    fn escapes_markup() {
        assert_eq!(
            escape_html(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#x27;y&#x27;)&lt;/script&gt;"
        );
        assert_eq!(escape_html("plain ünïcode"), "plain ünïcode");
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
