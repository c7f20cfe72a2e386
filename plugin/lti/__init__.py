"""LTI 1.3: registrations, hardened launches, role mapping.

Built on pylti1p3 through its extension points (ToolConfAbstract, a MessageLaunch
subclass); every check the 1EdTech Security Framework asks for and the library does not
make is a named rule here with its own reason code.
"""
