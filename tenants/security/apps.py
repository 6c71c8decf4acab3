from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "tenants.security"
    label = "security"
    verbose_name = "Security"

    def ready(self) -> None:
        from tenants.security import receivers  # noqa: F401  (audit of lockouts, login time of a session)
