/*
 * The CA database view (certview.h, certadm.h) with the GUIDs mingw-w64 declares but no mingw
 * import library defines: certview_guids.c defines them from the Windows SDK's values. The view
 * reader (view.c) and the Wine test's fake CCertView include this header instead of the SDK
 * headers, so both use one copy of each value.
 */
#ifndef CERTRELAY_CATCHUP_WIN_CERTVIEW_GUIDS_H
#define CERTRELAY_CATCHUP_WIN_CERTVIEW_GUIDS_H

#ifndef COBJMACROS
#define COBJMACROS
#endif
#ifndef CONST_VTABLE
#define CONST_VTABLE
#endif
#include <windows.h>
#include <ole2.h>
#include <oleauto.h>
#include <certview.h>

/* certview.idl's sort orders, which mingw-w64's certview.h leaves out. */
#ifndef CVR_SORT_NONE
#define CVR_SORT_NONE    0
#define CVR_SORT_ASCEND  1
#define CVR_SORT_DESCEND 2
#endif
/* Column types (GetType), as certsrv's property types (certsrv.h, which we avoid). */
#ifndef PROPTYPE_LONG
#define PROPTYPE_LONG   1
#define PROPTYPE_DATE   2
#define PROPTYPE_BINARY 3
#define PROPTYPE_STRING 4
#endif

/* certview.idl (Windows SDK) */
extern const IID IID_ICertView;              /* {c3fac344-1e84-11d1-9bd6-00c04fb683fa} */
extern const IID IID_ICertView2;             /* {d594b282-8851-4b61-9c66-3edadf848863} */
extern const IID IID_IEnumCERTVIEWROW;       /* {d1157f4c-5af2-11d1-9bdc-00c04fb683fa} */
extern const IID IID_IEnumCERTVIEWCOLUMN;    /* {9c735be2-57a5-11d1-9bdb-00c04fb683fa} */
extern const IID IID_IEnumCERTVIEWATTRIBUTE; /* {e77db656-7653-11d1-9bde-00c04fb683fa} */
extern const IID IID_IEnumCERTVIEWEXTENSION; /* {e7dd1466-7653-11d1-9bde-00c04fb683fa} */
/* certadm.idl (Windows SDK): the class certadm.dll registers, "CertificateAuthority.View". */
extern const CLSID CLSID_CCertView; /* {a12d0f7a-1e84-11d1-9bd6-00c04fb683fa} */

#endif
