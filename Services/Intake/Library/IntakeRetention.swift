import Foundation
import ServiceRuntime

/// What intake purges after the retention period (docs/SECURITY.md): the incidents held in the
/// occurrence ledger — names, dates of birth, addresses of children and adults. The ledger
/// rows stay (occurrence number, force, revision, content hash, when first seen and last
/// changed; each version's source and time): an amendment that arrives later is still known
/// as an amendment, and an exact replay is still dropped.
public enum IntakeRetention {
    public static let rules: [PurgeRule] = [
        .redact(
            "intake.occurrence", table: OccurrenceRow.databaseTableName, age: "updatedAt",
            set: "incident = X''", pending: "length(incident) > 0"),
        .redact(
            "intake.occurrence-version", table: OccurrenceVersionRow.databaseTableName, age: "receivedAt",
            set: "incident = X''", pending: "length(incident) > 0"),
    ]
}
