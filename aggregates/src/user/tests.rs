//! Given/when/then tests for every `User` command and rule.

use super::*;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;

type UserTest = TestFramework<User>;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn id() -> Uuid {
    Uuid::from_u128(0x1234)
}

fn admin_id() -> Uuid {
    Uuid::from_u128(0xad)
}

fn created(role: Role) -> UserEvent {
    UserEvent::UserCreated {
        user_id: id(),
        username: "alice".into(),
        email: "alice@example.com".into(),
        full_name: "Alice Liddell".into(),
        role,
        must_change_password: false,
        created_at: at(),
    }
}

fn create_cmd() -> UserCommand {
    UserCommand::CreateUser {
        user_id: id(),
        username: "alice".into(),
        email: "Alice@Example.com".into(),
        full_name: "  Alice Liddell ".into(),
        role: Role::Operator,
        must_change_password: false,
        at: at(),
    }
}

fn deleted() -> UserEvent {
    UserEvent::UserDeleted {
        user_id: id(),
        username: "alice".into(),
        deleted_at: at(),
    }
}

#[test]
fn create_normalises_email_and_name() {
    UserTest::with(())
        .given_no_previous_events()
        .when(create_cmd())
        .then_expect_events(vec![created(Role::Operator)]);
}

#[test]
fn create_twice_is_refused() {
    UserTest::with(())
        .given(vec![created(Role::Operator)])
        .when(create_cmd())
        .then_expect_error(UserError::AlreadyExists);
}

#[test]
fn create_after_delete_is_refused() {
    UserTest::with(())
        .given(vec![created(Role::Operator), deleted()])
        .when(create_cmd())
        .then_expect_error(UserError::AlreadyExists);
}

#[test]
fn create_validates_fields() {
    for (username, email, full_name, field) in [
        ("al", "a@example.com", "A", "username"),
        ("-alice", "a@example.com", "A", "username"),
        ("ali ce", "a@example.com", "A", "username"),
        ("alice", "not-an-email", "A", "email"),
        ("alice", "a@b", "A", "email"),
        ("alice", "a b@example.com", "A", "email"),
        ("alice", "a@example.com", "   ", "full_name"),
        ("alice", "a@example.com", "bad\u{7}name", "full_name"),
    ] {
        let result = UserTest::with(())
            .given_no_previous_events()
            .when(UserCommand::CreateUser {
                user_id: id(),
                username: username.into(),
                email: email.into(),
                full_name: full_name.into(),
                role: Role::Viewer,
                must_change_password: false,
                at: at(),
            })
            .inspect_result();
        match result {
            Err(UserError::Invalid { field: f, .. }) => assert_eq!(f, field, "{username} {email}"),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
}

#[test]
fn update_profile_emits_only_changed_fields() {
    UserTest::with(())
        .given(vec![created(Role::Operator)])
        .when(UserCommand::UpdateProfile {
            email: Some("alice@example.com".into()),
            full_name: Some("Alice L.".into()),
            at: at(),
        })
        .then_expect_events(vec![UserEvent::UserProfileUpdated {
            user_id: id(),
            email: None,
            full_name: Some("Alice L.".into()),
            updated_at: at(),
        }]);
}

#[test]
fn update_profile_without_change_emits_nothing() {
    UserTest::with(())
        .given(vec![created(Role::Operator)])
        .when(UserCommand::UpdateProfile {
            email: Some("ALICE@example.com".into()),
            full_name: None,
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn update_profile_validates() {
    UserTest::with(())
        .given(vec![created(Role::Operator)])
        .when(UserCommand::UpdateProfile {
            email: Some("nope".into()),
            full_name: None,
            at: at(),
        })
        .then_expect_error(UserError::Invalid {
            field: "email",
            message: "email must be an address like name@example.com".into(),
        });
}

#[test]
fn commands_on_missing_or_deleted_user_are_not_found() {
    let commands = [
        UserCommand::UpdateProfile {
            email: None,
            full_name: Some("x".into()),
            at: at(),
        },
        UserCommand::Reactivate { at: at() },
        UserCommand::ChangePassword {
            reset_by_admin: false,
            at: at(),
        },
        UserCommand::Delete {
            actor_id: None,
            other_active_admins: 1,
            at: at(),
        },
    ];
    for command in commands {
        UserTest::with(())
            .given_no_previous_events()
            .when(command.clone())
            .then_expect_error(UserError::NotFound);
        UserTest::with(())
            .given(vec![created(Role::Viewer), deleted()])
            .when(command)
            .then_expect_error(UserError::NotFound);
    }
}

#[test]
fn change_role_records_from_and_to() {
    UserTest::with(())
        .given(vec![created(Role::Operator)])
        .when(UserCommand::ChangeRole {
            role: Role::Admin,
            actor_id: Some(admin_id()),
            other_active_admins: 1,
            at: at(),
        })
        .then_expect_events(vec![UserEvent::UserRoleChanged {
            user_id: id(),
            from: Role::Operator,
            to: Role::Admin,
            changed_at: at(),
        }]);
}

#[test]
fn change_role_to_same_role_is_a_no_op() {
    UserTest::with(())
        .given(vec![created(Role::Viewer)])
        .when(UserCommand::ChangeRole {
            role: Role::Viewer,
            actor_id: Some(admin_id()),
            other_active_admins: 1,
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn admin_cannot_change_own_role() {
    UserTest::with(())
        .given(vec![created(Role::Admin)])
        .when(UserCommand::ChangeRole {
            role: Role::Viewer,
            actor_id: Some(id()),
            other_active_admins: 3,
            at: at(),
        })
        .then_expect_error(UserError::SelfChange("change the role of"));
}

#[test]
fn last_admin_cannot_be_demoted_deactivated_or_deleted() {
    let commands = [
        UserCommand::ChangeRole {
            role: Role::Operator,
            actor_id: Some(admin_id()),
            other_active_admins: 0,
            at: at(),
        },
        UserCommand::Deactivate {
            actor_id: Some(admin_id()),
            other_active_admins: 0,
            at: at(),
        },
        UserCommand::Delete {
            actor_id: Some(admin_id()),
            other_active_admins: 0,
            at: at(),
        },
    ];
    for command in commands {
        UserTest::with(())
            .given(vec![created(Role::Admin)])
            .when(command)
            .then_expect_error(UserError::LastAdmin);
    }
}

#[test]
fn an_inactive_admin_is_not_the_last_admin() {
    UserTest::with(())
        .given(vec![
            created(Role::Admin),
            UserEvent::UserDeactivated {
                user_id: id(),
                deactivated_at: at(),
            },
        ])
        .when(UserCommand::Delete {
            actor_id: Some(admin_id()),
            other_active_admins: 0,
            at: at(),
        })
        .then_expect_events(vec![deleted()]);
}

#[test]
fn deactivate_and_reactivate() {
    let deactivated = UserEvent::UserDeactivated {
        user_id: id(),
        deactivated_at: at(),
    };
    UserTest::with(())
        .given(vec![created(Role::Operator)])
        .when(UserCommand::Deactivate {
            actor_id: Some(admin_id()),
            other_active_admins: 1,
            at: at(),
        })
        .then_expect_events(vec![deactivated.clone()]);
    UserTest::with(())
        .given(vec![created(Role::Operator), deactivated.clone()])
        .when(UserCommand::Deactivate {
            actor_id: Some(admin_id()),
            other_active_admins: 1,
            at: at(),
        })
        .then_expect_events(vec![]);
    UserTest::with(())
        .given(vec![created(Role::Operator), deactivated])
        .when(UserCommand::Reactivate { at: at() })
        .then_expect_events(vec![UserEvent::UserReactivated {
            user_id: id(),
            reactivated_at: at(),
        }]);
    UserTest::with(())
        .given(vec![created(Role::Operator)])
        .when(UserCommand::Reactivate { at: at() })
        .then_expect_events(vec![]);
}

#[test]
fn nobody_deactivates_or_deletes_themselves() {
    UserTest::with(())
        .given(vec![created(Role::Operator)])
        .when(UserCommand::Deactivate {
            actor_id: Some(id()),
            other_active_admins: 2,
            at: at(),
        })
        .then_expect_error(UserError::SelfChange("deactivate"));
    UserTest::with(())
        .given(vec![created(Role::Operator)])
        .when(UserCommand::Delete {
            actor_id: Some(id()),
            other_active_admins: 2,
            at: at(),
        })
        .then_expect_error(UserError::SelfChange("delete"));
}

#[test]
fn password_change_by_admin_forces_another_change() {
    UserTest::with(())
        .given(vec![created(Role::Viewer)])
        .when(UserCommand::ChangePassword {
            reset_by_admin: true,
            at: at(),
        })
        .then_expect_events(vec![UserEvent::UserPasswordChanged {
            user_id: id(),
            reset_by_admin: true,
            must_change_password: true,
            changed_at: at(),
        }]);
    UserTest::with(())
        .given(vec![created(Role::Viewer)])
        .when(UserCommand::ChangePassword {
            reset_by_admin: false,
            at: at(),
        })
        .then_expect_events(vec![UserEvent::UserPasswordChanged {
            user_id: id(),
            reset_by_admin: false,
            must_change_password: false,
            changed_at: at(),
        }]);
}

#[test]
fn events_serialise_with_stable_names() {
    let json = serde_json::to_value(created(Role::Admin)).unwrap();
    assert_eq!(json["UserCreated"]["role"], "admin");
    let back: UserEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, created(Role::Admin));
    assert_eq!(deleted().event_type(), "UserDeleted");
    assert_eq!(deleted().event_version(), "1");
}

#[test]
fn update_applies_all_parts_in_one_go() {
    UserTest::with(())
        .given(vec![created(Role::Viewer)])
        .when(UserCommand::Update {
            email: None,
            full_name: Some("Alice B".into()),
            role: Some(Role::Operator),
            active: Some(false),
            password_reset: true,
            actor_id: Some(admin_id()),
            other_active_admins: 1,
            at: at(),
        })
        .then_expect_events(vec![
            UserEvent::UserProfileUpdated {
                user_id: id(),
                email: None,
                full_name: Some("Alice B".into()),
                updated_at: at(),
            },
            UserEvent::UserRoleChanged {
                user_id: id(),
                from: Role::Viewer,
                to: Role::Operator,
                changed_at: at(),
            },
            UserEvent::UserDeactivated {
                user_id: id(),
                deactivated_at: at(),
            },
            UserEvent::UserPasswordChanged {
                user_id: id(),
                reset_by_admin: true,
                must_change_password: true,
                changed_at: at(),
            },
        ]);
}

#[test]
fn update_is_all_or_nothing() {
    // The profile part is fine, the role part is refused: nothing is emitted.
    UserTest::with(())
        .given(vec![created(Role::Admin)])
        .when(UserCommand::Update {
            email: None,
            full_name: Some("New Name".into()),
            role: Some(Role::Viewer),
            active: None,
            password_reset: false,
            actor_id: Some(admin_id()),
            other_active_admins: 0,
            at: at(),
        })
        .then_expect_error(UserError::LastAdmin);
}

#[test]
fn update_of_a_missing_user_is_not_found() {
    UserTest::with(())
        .given_no_previous_events()
        .when(UserCommand::Update {
            email: None,
            full_name: None,
            role: None,
            active: Some(true),
            password_reset: false,
            actor_id: None,
            other_active_admins: 0,
            at: at(),
        })
        .then_expect_error(UserError::NotFound);
}
