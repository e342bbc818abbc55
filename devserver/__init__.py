"""Local development server: embedded moto backend and chalice local."""
