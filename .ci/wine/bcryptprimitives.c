/* bcryptprimitives.dll for Wine 8, which has none (Wine 9 does).
 *
 * Go's Windows runtime (since Go 1.22) takes its random bytes from
 * ProcessPrng, loaded from bcryptprimitives.dll in system32, and gives up at
 * start when it cannot: under Wine 8 every Go program dies before main.
 * This DLL exports ProcessPrng alone and draws the bytes from bcrypt.dll's
 * system RNG, which Wine 8 has. Built by .ci/wine-exec with mingw-w64; it is
 * a test fixture for running the Windows tests under Wine, never shipped.
 */
#include <windows.h>
#include <bcrypt.h>

/* ProcessPrng cannot fail on Windows, and callers do not check; here a
 * failure of the system RNG returns FALSE, and the Go runtime then throws. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE out, SIZE_T n)
{
	while (n > 0) {
		/* BCryptGenRandom takes a ULONG: at most 1 GiB a call. */
		ULONG chunk = n > (1UL << 30) ? (1UL << 30) : (ULONG)n;
		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, out, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			return FALSE;
		out += chunk;
		n -= chunk;
	}
	return TRUE;
}
