"""Who is calling: bearer tokens (API tokens, OpenID Connect access tokens) and signed download links."""
