"""`python manage.py create_api_key NAME [--expires-days N]`: prints a new API key as its last word."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from rest_framework_api_key.models import APIKey


class Command(BaseCommand):
    help = (
        "Create an API key for a server-to-server client (sent as 'Authorization: Api-Key <key>'). "
        "The key is printed once, as the last word of the output; only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who uses the key, e.g. 'shop-backend' (shown in the admin).")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="Days until the key expires (default: never)."
        )

    def handle(self, *args: object, name: str, expires_days: int | None, **options: object) -> None:
        name = name.strip()
        if not name:
            raise CommandError("NAME must not be empty.")
        if len(name) > APIKey._meta.get_field("name").max_length:
            raise CommandError(
                f"NAME is too long (at most {APIKey._meta.get_field('name').max_length} characters)."
            )
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1.")
        expiry = timezone.now() + timedelta(days=expires_days) if expires_days else None
        if APIKey.objects.filter(name=name, revoked=False).exists():
            self.stderr.write(f"Note: another active key is already named {name!r}; creating a second one.")
        api_key, key = APIKey.objects.create_key(name=name, expiry_date=expiry)
        until = f", expires {expiry:%Y-%m-%d %H:%M} UTC" if expiry else ""
        self.stdout.write(
            f"Created API key {name!r} (prefix {api_key.prefix}{until}). "
            "Store it now; it cannot be shown again. Send it as 'Authorization: Api-Key <key>'. Key: "
        )
        self.stdout.write(key)
