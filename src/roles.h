/*
 * roles.h — the role model: the group roles the extension creates and the
 * tests of what a role may see and do through them.
 */
#ifndef ELT_ROLES_H
#define ELT_ROLES_H

#include "postgres.h"

/* Group roles made by the extension script (cluster-wide, NOLOGIN). */
#define ELT_ROLE_READER "elt_reader"
#define ELT_ROLE_OPERATOR "elt_operator"
#define ELT_ROLE_ADMIN "elt_admin"

extern bool EltRoleIsReader(Oid role);
extern bool EltRoleIsOperator(Oid role);
extern bool EltRoleIsAdmin(Oid role);
extern bool EltRoleSeesRole(Oid role, Oid other);
extern bool EltRoleMayActAs(Oid role, Oid owner);

#endif							/* ELT_ROLES_H */
