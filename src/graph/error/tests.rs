use super::*;

fn api(status: u16, message: &str) -> GraphError {
    let body = serde_json::json!({
        "error": {"code": "Code", "message": message,
                  "innerError": {"date": "x", "request-id": "rid-inner",
                                 "client-request-id": "crid-inner"}}
    });
    GraphError::from_response(
        "GET",
        "/users/u",
        status,
        &ResponseIds::default(),
        body.to_string().as_bytes(),
    )
}

#[test]
fn classifies_by_status() {
    let cases = [
        (429, ErrorClass::Throttled),
        (500, ErrorClass::Unavailable),
        (502, ErrorClass::Unavailable),
        (503, ErrorClass::Unavailable),
        (504, ErrorClass::Unavailable),
        (400, ErrorClass::BadRequest),
        (401, ErrorClass::Unauthorized),
        (403, ErrorClass::Forbidden),
        (404, ErrorClass::NotFound),
        (409, ErrorClass::Conflict),
        (418, ErrorClass::Other),
    ];
    for (status, class) in cases {
        let err = api(status, "boom");
        assert_eq!(err.class(), class, "{status}");
        assert_eq!(
            err.is_retryable(),
            matches!(class, ErrorClass::Throttled | ErrorClass::Unavailable)
        );
    }
}

#[test]
fn transient_install_400s_are_unavailable() {
    let err = api(
        400,
        "Failed to execute Skype backend request: Internal Exception",
    );
    assert_eq!(err.class(), ErrorClass::Unavailable);
    let err = api(400, "Error while reading the Settings Store");
    assert!(err.is_retryable());
    // Verbatim from users' reports.
    for reported in [
        "Failed to execute Skype backend request CreateThreadRequest.",
        "Request failed with: Failed to execute settings store request.",
    ] {
        assert_eq!(
            api(400, reported).class(),
            ErrorClass::Unavailable,
            "{reported}"
        );
    }
    assert_eq!(api(400, "Invalid bind URL").class(), ErrorClass::BadRequest);
}

#[test]
fn forbidden_tells_licence_policy_and_permission_apart() {
    let cases = [
        (
            "Failed to get license information for the user. Ensure user has a valid \
             Office365 license assigned to them.",
            ErrorClass::NotLicensed,
        ),
        (
            "App is blocked by app permission policy",
            ErrorClass::BlockedByPolicy,
        ),
        (
            "The application is not allowed to manage the Teams App for this user.",
            ErrorClass::Forbidden,
        ),
        ("Insufficient privileges", ErrorClass::Forbidden),
    ];
    for (message, class) in cases {
        let err = api(403, message);
        assert_eq!(err.class(), class, "{message}");
        assert!(!err.is_retryable());
    }
}

#[test]
fn keeps_ids_and_code_and_displays_them() {
    let err = api(404, "User not found");
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.code(), Some("Code"));
    assert_eq!(err.request_id(), Some("rid-inner"));
    assert_eq!(err.client_request_id(), Some("crid-inner"));
    let text = err.to_string();
    for part in ["404", "Code", "User not found", "rid-inner"] {
        assert!(text.contains(part), "{text} lacks {part}");
    }
}

#[test]
fn header_ids_win_over_inner_error() {
    let ids = ResponseIds {
        request_id: Some("rid-header".into()),
        client_request_id: None,
        retry_after: Some(Duration::from_millis(1500)),
    };
    let err = GraphError::from_response("GET", "/x", 429, &ids, b"not json");
    assert_eq!(err.request_id(), Some("rid-header"));
    assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
    assert_eq!(err.class(), ErrorClass::Throttled);
    assert!(err.to_string().contains("not json"));
}

#[test]
fn auth_errors_classify_by_retryability() {
    let mut e = AuthError {
        status: Some(400),
        error: "invalid_client".into(),
        description: Some("AADSTS7000215: Invalid client secret provided.".into()),
        error_codes: vec![7000215],
        trace_id: Some("t".into()),
        correlation_id: Some("c".into()),
        retry_after: None,
    };
    assert_eq!(
        GraphError::Auth(Box::new(e.clone())).class(),
        ErrorClass::Unauthorized
    );
    e.error = "invalid_client".into();
    e.error_codes = vec![70021];
    assert_eq!(
        GraphError::Auth(Box::new(e.clone())).class(),
        ErrorClass::Unavailable
    );
    // Same prefix, different (permanent) codes: a misconfigured federated credential.
    for code in [700211, 700213, 7002138] {
        e.error_codes = vec![code];
        e.description = Some(format!("AADSTS{code}: No matching federated identity."));
        assert_eq!(
            GraphError::Auth(Box::new(e.clone())).class(),
            ErrorClass::Unauthorized,
            "{code}"
        );
        // The description alone decides the same way.
        e.error_codes = vec![];
        assert_eq!(
            GraphError::Auth(Box::new(e.clone())).class(),
            ErrorClass::Unauthorized,
            "{code}"
        );
    }
    e.description = Some("AADSTS70021: No matching federated identity record found.".into());
    assert!(GraphError::Auth(Box::new(e.clone())).is_retryable());
    e.error = "temporarily_unavailable".into();
    e.error_codes = vec![];
    e.description = None;
    let err = GraphError::Auth(Box::new(e));
    assert!(err.is_retryable());
    assert_eq!(err.request_id(), Some("t"));
    assert!(err.to_string().contains("temporarily_unavailable"));
}

#[test]
fn long_messages_are_truncated() {
    let err = api(400, &"x".repeat(5000));
    assert!(err.to_string().len() < 700);
}
