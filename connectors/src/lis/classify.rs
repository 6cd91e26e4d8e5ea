//! LIS replies: SOAP faults and HTTP statuses.

use lienthong_core::transport::FailureClass;

use lienthong_core::codec::soap::SoapFault as Fault;

/// The class of a SOAP 1.1 fault: `Server` is the receiver's problem (retry later);
/// `Client`, `VersionMismatch`, `MustUnderstand` and anything unknown mean the
/// request must change.
pub fn fault_class(fault: &Fault) -> FailureClass {
    if fault.class() == "Server" {
        FailureClass::Transient
    } else {
        FailureClass::Permanent
    }
}

/// Reason and detail for a fault.
pub fn fault_text(system: &str, fault: &Fault) -> (String, String) {
    let advice = if fault_class(fault) == FailureClass::Transient {
        "transient: worth retrying"
    } else {
        "fix the message, the mapping or the credentials, then replay"
    };
    (
        format!("soap-fault:{}", fault.class()),
        format!(
            "{system} SOAP fault {}: {} ({advice})",
            fault.code, fault.string
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(code: &str) -> Fault {
        Fault {
            code: format!("soap:{code}"),
            string: "m".into(),
            detail: None,
        }
    }

    #[test]
    fn classes() {
        assert_eq!(fault_class(&f("Server")), FailureClass::Transient);
        assert_eq!(fault_class(&f("Client")), FailureClass::Permanent);
        assert_eq!(fault_class(&f("MustUnderstand")), FailureClass::Permanent);
        assert_eq!(fault_text("LIS", &f("Client")).0, "soap-fault:Client");
    }
}
