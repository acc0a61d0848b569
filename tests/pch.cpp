// Carries the precompiled header shared by the test suites.
