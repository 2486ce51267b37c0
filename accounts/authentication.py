"""`Authorization: Token <key>` against hashed, expiring tokens (accounts.ApiToken)."""

from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing and WWW-Authenticate; the lookup goes by the key's SHA-256 digest.

    A failed lookup counts against the strict `auth` throttle of the client's IP, so guessing keys is throttled like
    guessing passwords (DRF runs throttles only after authentication succeeded)."""

    def authenticate_credentials(self, key):
        # Imported here: DRF loads this class while core.exceptions (which these import) is being imported.
        from accounts import selectors, services
        from core.throttling import AuthThrottle

        token = selectors.api_token_authenticate(key=key)
        if token is None:
            throttle = AuthThrottle()
            if not throttle.allow_request(self._request, None):
                raise exceptions.Throttled(wait=throttle.wait())
            raise exceptions.AuthenticationFailed("Invalid or expired token.", code="authentication_failed")
        services.api_token_touch(token=token)
        return token.user, token

    def authenticate(self, request):
        self._request = request
        return super().authenticate(request)
