"""Test support: throwaway databases and vhosts on the real servers, services as processes."""
