/*
 * The certsrv COM interfaces and every GUID the exit module needs, in one place.
 *
 * mingw-w64 ships the C vtables (certexit.h, certif.h, certmod.h) but no import library defines
 * their IIDs, so guids.c defines them from Microsoft's published values. Every file of the DLL
 * (and the test harness) includes this header instead of the certsrv headers directly, because
 * of the workaround below.
 */
#ifndef CERTRELAY_STUB_WIN_GUIDS_H
#define CERTRELAY_STUB_WIN_GUIDS_H

/* C call macros (ICertExit2_Release(p)) and const vtables, as Wine's C COM code has them. */
#ifndef COBJMACROS
#define COBJMACROS
#endif
#ifndef CONST_VTABLE
#define CONST_VTABLE
#endif
#include <windows.h>
#include <ole2.h>
#include <oleauto.h>

/*
 * mingw-w64's certmod.h defines (not declares) seven `const WCHAR wszCMM_PROP_*[]` arrays at file
 * scope, so two files including it would collide at link time. Marking them selectany turns each
 * into a COMDAT the linker folds into one; the macros are removed again right after the include
 * so the names read normally in code.
 */
#define wszCMM_PROP_NAME            __attribute__((selectany)) wszCMM_PROP_NAME
#define wszCMM_PROP_DESCRIPTION     __attribute__((selectany)) wszCMM_PROP_DESCRIPTION
#define wszCMM_PROP_COPYRIGHT       __attribute__((selectany)) wszCMM_PROP_COPYRIGHT
#define wszCMM_PROP_FILEVER         __attribute__((selectany)) wszCMM_PROP_FILEVER
#define wszCMM_PROP_PRODUCTVER      __attribute__((selectany)) wszCMM_PROP_PRODUCTVER
#define wszCMM_PROP_DISPLAY_HWND    __attribute__((selectany)) wszCMM_PROP_DISPLAY_HWND
#define wszCMM_PROP_ISMULTITHREADED __attribute__((selectany)) wszCMM_PROP_ISMULTITHREADED
#include <certmod.h>
#include <certexit.h>
#include <certif.h>
#undef wszCMM_PROP_NAME
#undef wszCMM_PROP_DESCRIPTION
#undef wszCMM_PROP_COPYRIGHT
#undef wszCMM_PROP_FILEVER
#undef wszCMM_PROP_PRODUCTVER
#undef wszCMM_PROP_DISPLAY_HWND
#undef wszCMM_PROP_ISMULTITHREADED

/* Values certsrv uses that mingw-w64's headers lack (or keep in certsrv.h, which we avoid). */
#ifndef EXITEVENT_CERTUNREVOKED
#define EXITEVENT_CERTUNREVOKED 0x100 /* released from hold; not in the public header */
#endif
#ifndef EXITEVENT_CERTIMPORTED
#define EXITEVENT_CERTIMPORTED 0x200
#endif
#ifndef PROPTYPE_LONG
#define PROPTYPE_LONG   1
#define PROPTYPE_DATE   2
#define PROPTYPE_BINARY 3
#define PROPTYPE_STRING 4
#endif
#ifndef EXTENSION_CRITICAL_FLAG
#define EXTENSION_CRITICAL_FLAG 0x1
#endif
#ifndef CERTSRV_E_PROPERTY_EMPTY
#define CERTSRV_E_PROPERTY_EMPTY ((HRESULT)0x80094004L)
#endif

/* Microsoft's interfaces and the CA's server object (values from certexit.idl, certif.idl,
 * certmod.idl and certcli.idl). */
extern const IID IID_ICertExit;
extern const IID IID_ICertExit2;
extern const IID IID_ICertServerExit;
extern const IID IID_ICertManageModule;
extern const CLSID CLSID_CCertServerExit;

/* Ours. Never change them: they are the identity of the registered classes. */
extern const CLSID CLSID_CertRelayExit;       /* {32091528-ff3f-49cb-b654-3e20adc7464b} */
extern const CLSID CLSID_CertRelayExitManage; /* {4afd9b02-66fc-48e5-93ef-ba6a471c3e44} */

#define CRS_CLSID_EXIT_STR   L"{32091528-FF3F-49CB-B654-3E20ADC7464B}"
#define CRS_CLSID_MANAGE_STR L"{4AFD9B02-66FC-48E5-93EF-BA6A471C3E44}"

/* ProgIDs. certsrv requires an exit module's ProgID to end in ".Exit"; the CA snap-in finds the
 * manage class by appending "Manage" to it. */
#define CRS_PROGID_EXIT     L"CertRelay.Exit"
#define CRS_PROGID_EXIT_1   L"CertRelay.Exit.1"
#define CRS_PROGID_MANAGE   L"CertRelay.ExitManage"
#define CRS_PROGID_MANAGE_1 L"CertRelay.ExitManage.1"

#endif
