//! Which DVCQG replies mean "session expired", "try later" or "rejected".

use lienthong_core::transport::FailureClass;

/// What a reply means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Log in again and re-send once.
    SessionExpired,
    Failed(FailureClass, String),
}

/// Classifies an `error_code`.
pub fn classify(code: &str, expired: &[String], transient: &[String]) -> Verdict {
    if super::codec::is_success(code) {
        Verdict::Ok
    } else if expired.iter().any(|c| c == code) {
        Verdict::SessionExpired
    } else if transient.iter().any(|c| c == code) {
        Verdict::Failed(FailureClass::Transient, format!("dvcqg-error:{code}"))
    } else {
        let shown = if code.is_empty() { "none" } else { code };
        Verdict::Failed(FailureClass::Permanent, format!("dvcqg-error:{shown}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let exp = vec!["401".to_string()];
        let tr = vec!["99".to_string()];
        assert_eq!(classify("00", &exp, &tr), Verdict::Ok);
        assert_eq!(classify("0", &exp, &tr), Verdict::Ok);
        assert_eq!(classify("401", &exp, &tr), Verdict::SessionExpired);
        assert_eq!(
            classify("99", &exp, &tr),
            Verdict::Failed(FailureClass::Transient, "dvcqg-error:99".into())
        );
        assert_eq!(
            classify("03", &exp, &tr),
            Verdict::Failed(FailureClass::Permanent, "dvcqg-error:03".into())
        );
        assert_eq!(
            classify("", &exp, &tr),
            Verdict::Failed(FailureClass::Permanent, "dvcqg-error:none".into())
        );
    }
}
