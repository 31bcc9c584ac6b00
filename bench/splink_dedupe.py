"""Splink (Ministry of Justice) deduplication of a FEBRL-format file, for `encompass-bench research --splink`.

No id column is used (police records carry no national id): names, date of birth and address
only. u by random sampling, m by expectation maximisation over two blocking rules, then
pairwise predictions at or above the threshold. Writes the linked pairs (rec_id,rec_id per
line) to --out and prints one JSON line: {"records", "pairs", "seconds"} (seconds: reading
the file, training and predicting, as the Swift matcher's figure includes its own training).

Usage: python splink_dedupe.py FILE --out PAIRS --threshold 0.99
"""

import argparse
import json
import logging
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threshold", type=float, default=0.99)
    args = parser.parse_args()

    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    start = time.perf_counter()
    df = pd.read_csv(args.file, dtype=str, skipinitialspace=True, keep_default_na=False)
    df.columns = [c.strip() for c in df.columns]
    df = df.drop(columns=["soc_sec_id"], errors="ignore")
    for column in df.columns:
        df[column] = df[column].str.strip().replace("", None)
    df = df.rename(columns={"rec_id": "unique_id"})

    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("surname", "date_of_birth"),
            block_on("given_name", "date_of_birth"),
            block_on("postcode", "street_number"),
            block_on("postcode", "surname"),
        ],
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("street_number", [1]),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("address_2", [0.9, 0.7]),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]),
            cl.JaroWinklerAtThresholds("suburb", [0.9]),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(df, settings, db_api=DuckDBAPI()) if _takes_db_api() else Linker(DuckDBAPI().register(df), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth"), block_on("surname", "postcode", "street_number")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "surname"))
    predictions = linker.inference.predict(threshold_match_probability=args.threshold).as_pandas_dataframe()
    seconds = time.perf_counter() - start
    with open(args.out, "w") as out:
        for left, right in zip(predictions["unique_id_l"], predictions["unique_id_r"]):
            out.write(f"{left},{right}\n")
    print(json.dumps({"records": len(df), "pairs": len(predictions), "seconds": seconds}))
    return 0


def _takes_db_api() -> bool:
    import inspect

    from splink import Linker

    return "db_api" in inspect.signature(Linker.__init__).parameters


if __name__ == "__main__":
    sys.exit(main())
