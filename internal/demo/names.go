package demo

import mrand "math/rand/v2"

// A compact name generator with realistic spread: about a third of
// patients carry one of the common surnames below (each near 1%, as the
// commonest surnames are in real registries), the rest one of several
// thousand generated ones; accents and apostrophes included.

var (
	commonFamily = []string{"Müller", "O'Brien", "García", "Nováková", "Ødegaard", "Dubois", "Kowalski", "Smith",
		"Okafor", "Tanaka", "Nguyen", "Fernández", "Schäfer", "Rossi", "Johansson", "Kaya", "Patel", "MacDonald",
		"Wiśniewski", "Papadopoulos", "Horváth", "Silva", "Ivanova", "Jones", "Brown", "Mensah", "Cohen",
		"Lefèvre", "Sánchez", "Van der Berg", "Ó Súilleabháin", "Al-Sayed", "Kim", "Novak", "Williams"}
	familyRoots = []string{"Abr", "Adel", "Alb", "Alm", "And", "Ang", "Ant", "Arn", "Bach", "Bald", "Barr", "Bart", "Beck",
		"Bell", "Ben", "Berg", "Bern", "Bianch", "Bj", "Blanc", "Bog", "Bor", "Bran", "Brun", "Carl", "Carv", "Cast", "Chav",
		"Clar", "Colom", "Cost", "Dal", "Dan", "Dav", "Dob", "Dom", "Dr", "Duc", "Eck", "Ed", "Eng", "Erik", "Esp", "Fab",
		"Fal", "Ferr", "Fisch", "Fitz", "Flor", "Fr", "Gal", "Garr", "Gil", "Gonz", "Gr", "Guer", "Gust", "Hal", "Hans",
		"Hart", "Heid", "Herr", "Hoff", "Holm", "Hub", "Ib", "Iv", "Jak", "Jans", "Jens", "Kal", "Kar", "Kell", "Kl", "Koch",
		"Kr", "Kuz", "Lamb", "Lar", "Laur", "Leb", "Lind", "Lomb", "Lor", "Lund", "Mack", "Mal", "Marc", "Mart", "Mat",
		"Mend", "Mich", "Mill", "Mor", "Nag", "Nel", "Niel", "Nik", "Nord", "Ol", "Ort", "Osb", "Pal", "Pav", "Ped", "Pet",
		"Pol", "Pr", "Quint", "Rad", "Ram", "Reyn", "Rich", "Rod", "Rom", "Ros", "Rud", "Sal", "Sand", "Sch", "Sev", "Sim",
		"Sok", "Sor", "Stef", "Str", "Sv", "Tal", "Tom", "Tor", "Urb", "Val", "Vas", "Vel", "Vid", "Wal", "Web", "Wil",
		"Wolf", "Yam", "Zab", "Zel", "Zim", "Čern", "Łuk", "Šim", "Ží", "Ång", "Øst", "Ðor", "Öz", "Ün"}
	familySuffixes = []string{"", "a", "ak", "ano", "anov", "ard", "berg", "czyk", "dóttir", "eau", "ek", "ello", "en",
		"er", "es", "escu", "ez", "feld", "gaard", "i", "ian", "ich", "ić", "ides", "ini", "is", "ković", "lund", "mann",
		"mo", "o", "opoulos", "ová", "ović", "quist", "s", "sen", "ski", "son", "ström", "ton", "uk", "yan", "ycz"}

	givenF = []string{"Amélie", "Zoë", "Siobhán", "María José", "Ingrid", "Aisha", "Yuki", "Olga", "Chloé", "Fatima",
		"Hannah", "Lena", "Priya", "Grace", "Małgorzata", "Ana", "Noor", "Sofia", "Émilie", "Nkechi", "Agnieszka", "Aiko",
		"Alessia", "Alice", "Amara", "Amina", "Anja", "Aoife", "Astrid", "Beatriz", "Birgit", "Camille", "Carmen",
		"Charlotte", "Chiara", "Clara", "Dagný", "Daria", "Deepa", "Diana", "Dorota", "Ebba", "Elena", "Eleni", "Elif",
		"Eliška", "Emma", "Esther", "Eva", "Farah", "Freya", "Gabriela", "Giulia", "Hana", "Helga", "Hélène", "Ines",
		"Irene", "Isabel", "Ivana", "Jana", "Jasmine", "Joanna", "Julia", "Kaja", "Katarzyna", "Kavya", "Keiko", "Laila",
		"Lara", "Laura", "Leila", "Lucía", "Maja", "Margit", "Marta", "Mei", "Mia", "Mirela", "Nadia", "Naomi", "Nina",
		"Nora", "Olivia", "Paula", "Petra", "Rania", "Rebecca", "Rosa", "Ruth", "Saanvi", "Sara", "Signe", "Sinéad",
		"Sunita", "Tamara", "Tereza", "Thandiwe", "Valentina", "Vera", "Wiktoria", "Yasmin", "Zeynep", "Zofia"}
	givenM = []string{"José", "Søren", "Łukasz", "Mohammed", "Oliver", "Jürgen", "Kenji", "Mateo", "Ravi", "Dmitri",
		"Luca", "Kwame", "Liam", "François", "Björn", "Ahmed", "Tomás", "Noah", "Chidi", "Andrés", "Adam", "Adrián",
		"Aleksander", "Ali", "Anders", "André", "Antoine", "Arjun", "Bartosz", "Ben", "Bogdan", "Carlos", "Cian",
		"Daniel", "Darius", "David", "Diego", "Elias", "Emeka", "Emil", "Enzo", "Erik", "Farid", "Felix", "Finn",
		"Gabriel", "Georg", "Giorgos", "Hamza", "Hans", "Hiroshi", "Hugo", "Ibrahim", "Igor", "Isaac", "Ivan", "Jakub",
		"Jan", "Javier", "Jonas", "Jorge", "Karim", "Kofi", "Lars", "Leon", "Lorenzo", "Lucas", "Magnus", "Marco",
		"Mario", "Matteo", "Mehmet", "Miguel", "Mikhail", "Nikolai", "Olaf", "Omar", "Pablo", "Patrick", "Pavel",
		"Pedro", "Pierre", "Rafael", "Rahul", "Ryo", "Samuel", "Sebastián", "Stefan", "Sven", "Takeshi", "Theo",
		"Thomas", "Tobias", "Václav", "Viktor", "Wojciech", "Yusuf", "Zoltán"}
)

func pick(rng *mrand.Rand, list []string) string { return list[rng.IntN(len(list))] }

// familyName draws a surname: a third common, the rest generated.
func familyName(rng *mrand.Rand) string {
	if rng.IntN(3) == 0 {
		return pick(rng, commonFamily)
	}
	return pick(rng, familyRoots) + pick(rng, familySuffixes)
}

// givenNames draws one given name, sometimes two.
func givenNames(rng *mrand.Rand, female bool) string {
	list := givenM
	if female {
		list = givenF
	}
	g := pick(rng, list)
	if rng.IntN(4) == 0 {
		if second := pick(rng, list); second != g {
			g += " " + second
		}
	}
	return g
}
