//! GIP reply `ERROR_CODE` classification.

use lienthong_core::transport::FailureClass;

/// `None` for success, else the class and reason.
pub fn classify(code: &str, transient: &[String]) -> Option<(FailureClass, String)> {
    if matches!(code, "" | "0" | "00" | "000") {
        return None;
    }
    let class = if transient.iter().any(|c| c == code) {
        FailureClass::Transient
    } else {
        FailureClass::Permanent
    };
    Some((class, format!("gip-error:{code}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let t = vec!["99".to_string()];
        assert!(classify("", &t).is_none());
        assert!(classify("00", &t).is_none());
        assert_eq!(classify("99", &t).unwrap().0, FailureClass::Transient);
        assert_eq!(
            classify("05", &t),
            Some((FailureClass::Permanent, "gip-error:05".into()))
        );
    }
}
