/// Name and street lists for synthetic people. Common names of England and Wales, with the
/// informal forms officers often write down.
enum Names {
    static let girls = [
        "Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Sophia", "Grace", "Freya", "Florence",
        "Willow", "Emily", "Ella", "Poppy", "Evie", "Charlotte", "Elsie", "Evelyn", "Ruby", "Sienna", "Daisy", "Phoebe",
        "Harper", "Matilda", "Jessica", "Sophie", "Chloe", "Hannah", "Katie", "Megan", "Lucy", "Holly", "Amy", "Zara",
        "Aisha", "Maryam", "Amira", "Layla", "Priya", "Niamh", "Erin", "Rebecca", "Elizabeth", "Catherine", "Abigail",
        "Victoria", "Jennifer", "Samantha",
    ]
    static let boys = [
        "Oliver", "George", "Noah", "Arthur", "Harry", "Leo", "Muhammad", "Jack", "Charlie", "Oscar", "Jacob", "Henry",
        "Thomas", "Freddie", "Alfie", "Theo", "William", "Theodore", "Archie", "Joshua", "Alexander", "James", "Isaac",
        "Edward", "Lucas", "Tommy", "Finley", "Max", "Logan", "Ethan", "Mason", "Daniel", "Samuel", "Joseph", "Benjamin",
        "Ryan", "Liam", "Kyle", "Callum", "Connor", "Adam", "Ibrahim", "Yusuf", "Harvey", "Dylan", "Robert", "Michael",
        "Christopher", "Matthew", "Nathan",
    ]
    static let adultsFemale = [
        "Sarah", "Emma", "Laura", "Rebecca", "Gemma", "Claire", "Nicola", "Kelly", "Lisa", "Michelle", "Joanne", "Rachel",
        "Hayley", "Stacey", "Jade", "Amanda", "Victoria", "Katherine", "Elizabeth", "Jennifer", "Samantha", "Charlotte",
        "Donna", "Natalie", "Zoe", "Leanne", "Kirsty", "Shabana", "Nadia", "Agnieszka",
    ]
    static let adultsMale = [
        "David", "Paul", "Mark", "Andrew", "Richard", "Daniel", "Christopher", "Stephen", "Michael", "James", "Robert",
        "Anthony", "Lee", "Craig", "Darren", "Wayne", "Gary", "Jason", "Matthew", "Thomas", "William", "Jonathan",
        "Imran", "Tariq", "Piotr", "Kevin", "Stuart", "Dean", "Carl", "Shaun",
    ]
    static let surnames = [
        "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson", "Roberts",
        "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes", "Green", "Hall", "Lewis", "Harris",
        "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark",
        "Lee", "King", "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis", "Parker",
        "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter", "Richardson", "Bailey",
        "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards", "Khan", "Marshall", "Anderson", "Simpson",
        "Ellis", "Adams", "Singh", "Begum", "Wilkinson", "Foster", "Chapman", "Powell", "Webb", "Rogers", "Gray",
        "Mason", "Ali", "Hunt", "Hussain", "Campbell", "Matthews", "Owen", "Palmer", "Holmes", "Mills", "Barnes",
        "Knight", "Lloyd", "Butler", "Russell", "Barker", "Fisher", "Stevens", "Jenkins", "Murray", "Dixon", "Harvey",
        "Kowalski", "Nowak", "O'Brien", "Ahmed",
    ]
    /// Informal forms an officer may write instead of the given name.
    static let informal: [String: [String]] = [
        "Robert": ["Rob", "Bob", "Bobby"], "William": ["Will", "Bill", "Billy"], "Elizabeth": ["Liz", "Beth", "Lizzie"],
        "Catherine": ["Kate", "Cathy"], "Katherine": ["Kate", "Kathy"], "Jennifer": ["Jen", "Jenny"],
        "Samantha": ["Sam", "Sammy"], "Christopher": ["Chris"], "Michael": ["Mike", "Mick"], "Matthew": ["Matt"],
        "Alexander": ["Alex"], "Benjamin": ["Ben"], "Samuel": ["Sam"], "Joseph": ["Joe"], "Thomas": ["Tom", "Tommy"],
        "Daniel": ["Dan", "Danny"], "Jonathan": ["Jon"], "Stephen": ["Steve"], "Anthony": ["Tony"], "Andrew": ["Andy"],
        "Richard": ["Rich", "Dick"], "James": ["Jim", "Jamie"], "Edward": ["Ed", "Ted", "Eddie"], "Victoria": ["Vicky"],
        "Rebecca": ["Becky", "Becca"], "Charlotte": ["Charlie", "Lottie"], "Abigail": ["Abbie"], "Jessica": ["Jess"],
        "Nicola": ["Nicky"], "Joshua": ["Josh"], "Nathan": ["Nate"], "Theodore": ["Theo"], "Isabella": ["Bella", "Izzy"],
        "Amanda": ["Mandy"], "Natalie": ["Nat"],
    ]
    static let streets = [
        "High Street", "Station Road", "Church Road", "Victoria Road", "Green Lane", "Manor Road", "Park Road",
        "Queens Road", "Kings Road", "New Road", "Oxford Road", "London Road", "Mill Lane", "School Lane", "The Crescent",
        "Grange Road", "Windsor Road", "Highfield Road", "York Road", "Springfield Road", "Chestnut Avenue",
        "Meadow Way", "Beech Close", "Orchard Close", "Elm Grove", "Cedar Drive", "Willow Court", "Brook Street",
        "North Street", "South View", "Westfield Road", "Rectory Lane", "Farm Close", "Kennet Walk", "Thames Side",
        "Chiltern View", "Abbey Road", "Castle Street", "Mortimer Road", "Bath Road",
    ]
}

extension Names {
    /// Brief circumstances as officers write them (`Incident.circumstances`): about the
    /// household and the children, never naming anyone.
    static let circumstances = [
        "Verbal argument in the kitchen after a night out; the children were upstairs and heard shouting.",
        "Argument over child contact arrangements at the front door; the children were in the living room.",
        "Neighbour called police after hearing raised voices and a door being slammed; children at home.",
        "Dispute over money escalated; a mobile phone was broken. The child was in the same room.",
        "Ex-partner attended the address uninvited and refused to leave; the children saw the argument.",
        "Report of pushing in the hallway during an argument; the children were woken by the noise.",
        "Argument in the car outside the address; the child was in the back seat.",
        "Repeat call to the address; shouting heard by the children, no injuries reported.",
    ]

    /// "Any other relevant safeguarding information" (`Incident.safeguardingInformation`).
    static let safeguardingInformation = [
        "The child may be tired in school; police attended late at night.",
        "The family has an open referral to Children's Social Care; the school may already know the social worker.",
        "The child told officers they were worried about a parent; please offer a trusted adult to talk to.",
        "One parent has moved out of the household; collection arrangements may change.",
        "Police have advised on safety planning; please check who is permitted to collect the child.",
    ]
}
