"""Profiles: one per user, created with the user; the user's names, timezone and morning hour."""

from django.db import transaction

from tasks_app.models import Profile


def profile_ensure_for_new_user(sender, instance, created, **kwargs):
    if created:
        Profile.objects.get_or_create(user=instance)


@transaction.atomic
def profile_update(*, user, data):
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    user_fields = [f for f in ("first_name", "last_name") if f in data]
    for field in user_fields:
        setattr(user, field, data[field])
    if user_fields:
        user.save(update_fields=user_fields)
    profile_fields = [f for f in ("timezone", "morning_hour") if f in data]
    for field in profile_fields:
        setattr(profile, field, data[field])
    if profile_fields:
        profile.full_clean()
        profile.save(update_fields=profile_fields)
    return user
