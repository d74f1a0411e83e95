"""Programs: tool bundles installed from a git URL or a tarball into the workspace's
``.oxios/programs/<name>``, owned by the ``ProgramRegistry`` actor."""
