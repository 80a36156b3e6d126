"""Built-in checks, one module per backend; each imports its driver only when used."""

__all__: list[str] = []
