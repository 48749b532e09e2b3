"""Who is who: reps' passwords, sign-in with a rate limit, sessions, and the signed proof that a
completion came from a signed-in person.

Why: the OSS Prefect server has no user accounts, and a form's `completed_by` is a name anyone
can type (in the UI's Resume dialog, or straight to Prefect's API). So handoff signs every
completion it sends — for that item, that attempt (the key the run waits on), that person and
that answer (a hash of its canonical JSON) — with a secret only handoff holds, and the waiting
flow accepts nothing else (`complete_verified`). Nobody who only reaches Prefect can forge it.

- secret.py            the server secret that everything below is signed with
- sign_in.py           passwords, and sign-in with a rate limit (per name, address or device)
- sessions.py          signed sessions: the web cookie, the CLI's session file
- completion_proof.py  the proof a completion carries, and the completion that checks it
"""
