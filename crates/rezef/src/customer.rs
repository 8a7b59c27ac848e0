//! Naming a customer on the command line: a customer id, or `kind:value` for an identity.

use rezef_adapter::{identity_ref, proto};

/// Parses `phone:+972…`, `email:…`, `visitor:…`, `app:…`, `crm:…`, `messaging:…`,
/// `social:NETWORK:HANDLE`; anything else is a customer id. A number goes to the server as
/// given (`phone:050-1234567`), which reads it in the tenant's region like any other.
pub fn parse(text: &str) -> proto::CustomerRef {
    let kind = |name: &str| match name {
        "phone" => Some(proto::IdentityKind::Phone),
        "email" => Some(proto::IdentityKind::Email),
        "visitor" => Some(proto::IdentityKind::ChatVisitor),
        "app" => Some(proto::IdentityKind::AppUser),
        "crm" => Some(proto::IdentityKind::CrmId),
        "messaging" => Some(proto::IdentityKind::MessagingId),
        _ => None,
    };
    if let Some(("social", rest)) = text.split_once(':')
        && let Some((network, handle)) = rest.split_once(':')
    {
        return proto::CustomerRef {
            r#ref: Some(proto::customer_ref::Ref::Identity(proto::ChannelIdentity {
                kind: proto::IdentityKind::SocialHandle as i32,
                value: handle.into(),
                network: network.into(),
            })),
        };
    }
    match text.split_once(':').and_then(|(k, v)| Some((kind(k)?, v))) {
        Some((kind, value)) => identity_ref(kind, value),
        None => proto::CustomerRef {
            r#ref: Some(proto::customer_ref::Ref::CustomerId(text.into())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::customer_ref::Ref;

    #[test]
    fn identities_and_ids() {
        let Some(Ref::Identity(phone)) = parse("phone:+972501234567").r#ref else {
            panic!()
        };
        assert_eq!(
            (phone.kind, phone.value.as_str()),
            (proto::IdentityKind::Phone as i32, "+972501234567")
        );
        let Some(Ref::Identity(social)) = parse("social:x:dana").r#ref else {
            panic!()
        };
        assert_eq!(
            (social.network.as_str(), social.value.as_str()),
            ("x", "dana")
        );
        let Some(Ref::CustomerId(id)) = parse("cus-123").r#ref else {
            panic!()
        };
        assert_eq!(id, "cus-123");
    }
}
